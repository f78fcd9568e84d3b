package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/mysos-project/mysos/pkg/spec"
)

// LoadOrCreateToken reads the bearer token from path, or, when the file does
// not exist, generates a random one and writes it there readable only by its
// owner. created reports which happened.
func LoadOrCreateToken(path string) (token string, created bool, err error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("token file %s holds the admin token of every namespace but others may read it (mode %v): chmod 600 it", path, fi.Mode().Perm())
		}
		token = strings.TrimSpace(string(raw))
		if token == "" {
			return "", false, fmt.Errorf("token file %s is empty: delete it to have a new token generated", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read token file: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("generate token: %w", err)
	}
	token = hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create token directory: %w", err)
	}
	// O_EXCL: if two schedulers race on one data dir, one keeps its token
	// and the other fails loudly rather than both serving different ones.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("write token file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write token file: %w", err)
	}
	return token, true, f.Close()
}

// tokensFile is the format of --tokens-file: a list of named tokens, each
// given by its secret or, better, by the SHA-256 of it.
type tokensFile struct {
	Tokens []struct {
		Name       string   `json:"name"`
		Role       string   `json:"role"`
		Namespaces []string `json:"namespaces,omitempty"`
		Token      string   `json:"token,omitempty"`
		SHA256     string   `json:"sha256,omitempty"`
	} `json:"tokens"`
}

// LoadTokensFile reads a --tokens-file. A file that holds secrets (token:
// rather than sha256:) must be readable by its owner only.
func LoadTokensFile(path string) ([]FileToken, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	var f tokensFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w (each token has name, role, namespaces, and token or sha256)", path, err)
	}
	out := make([]FileToken, 0, len(f.Tokens))
	secrets := false
	for i, t := range f.Tokens {
		where := fmt.Sprintf("tokens file %s: tokens[%d] (%q)", path, i, t.Name)
		hash := strings.ToLower(t.SHA256)
		switch {
		case t.Token != "" && t.SHA256 != "":
			return nil, fmt.Errorf("%s: give token or sha256, not both", where)
		case t.Token != "":
			hash, secrets = HashToken(t.Token), true
		case len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "":
			return nil, fmt.Errorf("%s: sha256 must be 64 hex digits (sha256sum of the token), or give token", where)
		}
		ft := FileToken{SHA256: hash, APIToken: spec.APIToken{Name: t.Name, Role: t.Role, Namespaces: t.Namespaces}}
		if errs := spec.ValidateAPIToken(&ft.APIToken); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %w", where, errs)
		}
		out = append(out, ft)
	}
	if secrets {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("tokens file %s holds secrets but is readable by others (mode %v): chmod 600 it, or give each token as sha256", path, fi.Mode().Perm())
		}
	}
	return out, nil
}
