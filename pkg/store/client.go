package store

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/pki"
)

// ClientOptions say how to reach an external etcd cluster securely: TLS
// (its CA, and a client certificate when it wants one) and etcd's own
// user authentication.
type ClientOptions struct {
	Endpoints []string
	// CAFile verifies the servers' certificates (default: system roots);
	// CertFile and KeyFile are a client certificate for
	// --client-cert-auth clusters.
	CAFile, CertFile, KeyFile string
	// Username and PasswordFile log in with etcd's authentication.
	Username, PasswordFile string
	DialTimeout            time.Duration
}

// Config turns the options into a client configuration, reading the files.
func (o ClientOptions) Config() (clientv3.Config, error) {
	cfg := clientv3.Config{Endpoints: o.Endpoints, DialTimeout: o.DialTimeout}
	secure := o.CAFile != "" || o.CertFile != "" || o.Username != ""
	https := false
	for _, ep := range o.Endpoints {
		// The etcd client speaks plain gRPC to http:// endpoints whatever
		// else it is given: a password or a client key would cross the
		// network in clear, and a CA would verify nothing.
		if secure && !strings.HasPrefix(ep, "https://") {
			return cfg, fmt.Errorf("etcd endpoint %s is not https://: --etcd-ca-file, --etcd-cert-file and --etcd-user need TLS endpoints", ep)
		}
		https = https || strings.HasPrefix(ep, "https://")
	}
	if secure || https {
		tc, err := o.tlsConfig()
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	if o.Username != "" {
		if o.PasswordFile == "" {
			return cfg, errors.New("--etcd-user needs --etcd-password-file (a password is never taken on the command line)")
		}
		raw, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("--etcd-password-file: %w", err)
		}
		cfg.Username, cfg.Password = o.Username, strings.TrimRight(string(raw), "\r\n")
	} else if o.PasswordFile != "" {
		return cfg, errors.New("--etcd-password-file needs --etcd-user")
	}
	return cfg, nil
}

func (o ClientOptions) tlsConfig() (*tls.Config, error) {
	tc, err := pki.ClientTLS(o.CAFile, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--etcd-ca-file, --etcd-cert-file, --etcd-key-file: %w", err)
	}
	return tc, nil
}

// requireLoopback refuses a URL that is not on a loopback address: the
// embedded etcd has neither TLS nor authentication, so it must not be
// reachable from other hosts unless the operator says so.
func requireLoopback(flag, raw string, u *url.URL) error {
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s %s is not a loopback address: the embedded etcd has no TLS or authentication, so it serves only this host; "+
		"use 127.0.0.1, or pass --embedded-etcd-allow-remote if a firewall protects it, or run a secured etcd cluster (--etcd-endpoints)", flag, raw)
}
