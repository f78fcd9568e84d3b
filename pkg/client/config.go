package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is where mysosctl finds the scheduler and its token. The scheduler
// writes one into its data dir (mysosctl.yaml) on every start.
type Config struct {
	// Server is the API's base URL, e.g. http://127.0.0.1:55001.
	Server string `json:"server,omitempty"`
	// Token is the bearer token itself; TokenFile names a file holding it.
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
	// CertificateAuthority is a PEM file of the CA that signed the API's
	// certificate (https servers not signed by a system root);
	// ClientCertificate and ClientKey authenticate mysosctl to a
	// scheduler started with --tls-client-ca.
	CertificateAuthority string `json:"certificateAuthority,omitempty"`
	ClientCertificate    string `json:"clientCertificate,omitempty"`
	ClientKey            string `json:"clientKey,omitempty"`
	// Namespace is the default namespace for commands.
	Namespace string `json:"namespace,omitempty"`
}

// LoadConfig reads a config file; a missing file yields an empty config and
// found=false.
func LoadConfig(path string) (cfg Config, found bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, false, nil
	}
	if err != nil {
		return Config{}, false, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		return Config{}, true, fmt.Errorf("config file %s: %w (fields: server, token, tokenFile, certificateAuthority, clientCertificate, clientKey, namespace)", path, err)
	}
	return cfg, true, nil
}

// SaveConfig writes cfg to path, readable only by its owner since it may
// hold a token.
func SaveConfig(path string, cfg Config) error {
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadTokenFile returns the token stored in path.
func ReadTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}
