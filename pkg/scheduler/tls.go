package scheduler

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/mysos-project/mysos/pkg/pki"
)

// TLS configures HTTPS for the API.
type TLS struct {
	// CertFile and KeyFile are the server's certificate (chain) and key,
	// PEM; both or neither.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes every request but the executor
	// download present a client certificate that this CA signed.
	ClientCAFile string
}

func (t TLS) enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// serverConfig loads the certificate and the client CA.
func (t TLS) serverConfig() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pool, err := pki.LoadCertPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		// Verified if given: the executor download must work without one
		// (the Mesos fetcher has none); requireClientCert guards the rest.
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// clientCA is the file mysosctl should trust for this server: the
// certificate file itself when its last certificate is self-signed (a
// private CA's bundle or a self-signed certificate), else "" (the system's
// roots).
func (t TLS) clientCA() string {
	raw, err := os.ReadFile(t.CertFile)
	if err != nil {
		return ""
	}
	var last *x509.Certificate
	for rest := raw; ; {
		c, more, err := pki.NextCertificate(rest)
		if err != nil {
			break
		}
		last, rest = c, more
	}
	if last != nil && bytes.Equal(last.RawIssuer, last.RawSubject) {
		return t.CertFile
	}
	return ""
}
