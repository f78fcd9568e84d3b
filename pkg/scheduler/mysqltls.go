package scheduler

import (
	"context"
	"fmt"
	"os"

	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/store"
)

// loadMySQLCA reads --mysql-ca-cert and --mysql-ca-key, which go together:
// that CA then signs the MySQL certificates of every cluster with
// spec.tls, instead of a CA generated per cluster. nil without them.
func loadMySQLCA(o Options) (*pki.CA, error) {
	if o.MySQLCACert == "" && o.MySQLCAKey == "" {
		return nil, nil
	}
	if o.MySQLCACert == "" || o.MySQLCAKey == "" {
		return nil, fmt.Errorf("--mysql-ca-cert and --mysql-ca-key go together: give both, or neither for a CA generated per cluster")
	}
	st, err := os.Stat(o.MySQLCAKey)
	if err != nil {
		return nil, fmt.Errorf("--mysql-ca-key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--mysql-ca-key %s may be read by group or others (mode %v): run chmod 600 %s", o.MySQLCAKey, st.Mode().Perm(), o.MySQLCAKey)
	}
	certPEM, err := os.ReadFile(o.MySQLCACert)
	if err != nil {
		return nil, fmt.Errorf("--mysql-ca-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(o.MySQLCAKey)
	if err != nil {
		return nil, fmt.Errorf("--mysql-ca-key: %w", err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--mysql-ca-cert/--mysql-ca-key: %w", err)
	}
	return ca, nil
}

// mysqlTLS is where the launcher, the reconciler and the credentials API
// get clusters' MySQL CAs: the given one, else each cluster's own, sealed
// in st beside its passwords.
func mysqlTLS(st *store.Store, given *pki.CA) *reconciler.MySQLTLS {
	return &reconciler.MySQLTLS{Store: st, Given: given}
}

// credentialStore is the credentials API's store: the passwords, and the
// CA certificates clients verify a cluster's servers with.
type credentialStore struct {
	*store.Store
	tls *reconciler.MySQLTLS
}

// MySQLCACert implements apiserver.CACertStore.
func (c credentialStore) MySQLCACert(ctx context.Context, ns, name, uid string) ([]byte, error) {
	return c.tls.Trusted(ctx, ns, name, uid)
}
