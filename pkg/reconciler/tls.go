package reconciler

// MySQL TLS (spec.tls): the CA that signs a cluster's instance
// certificates, the certificates issued at each launch, and how Mysos'
// own connections and the replicas' use them. See docs/security.md,
// "MySQL TLS".

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// Lifetimes of what MySQLTLS makes. An instance's certificate is issued
// anew at every launch of its task; one that runs for longer than a year
// needs a relaunch (docs/security.md).
const (
	DefaultCertificateValidity = 365 * 24 * time.Hour
	DefaultCAValidity          = 10 * 365 * 24 * time.Hour
)

// CAStore keeps the CA Mysos generates for a cluster: pkg/store seals it
// beside the cluster's passwords, bound to the cluster's uid.
type CAStore interface {
	EnsureClusterCA(ctx context.Context, ns, name, uid string, generate func() (store.ClusterCA, error)) (store.ClusterCA, error)
	ClusterCA(ctx context.Context, ns, name, uid string) (store.ClusterCA, bool, error)
}

// MySQLTLS hands out a cluster's MySQL TLS material: the CA that signs its
// instances' certificates, and the CA certificates its members, Mysos and
// its clients trust.
type MySQLTLS struct {
	// Store keeps each cluster's generated CA.
	Store CAStore
	// Given, when set, signs every cluster's certificates instead of a CA
	// of its own (mysos-scheduler --mysql-ca-cert and --mysql-ca-key).
	Given *pki.CA
	// Validity of instance certificates (DefaultCertificateValidity), and
	// of the CAs generated (DefaultCAValidity). An instance certificate
	// never outlives its CA.
	Validity, CAValidity time.Duration
}

// errNoTLS: a cluster asks for TLS but the scheduler was given no way to
// keep CAs.
var errNoTLS = errors.New("spec.tls needs the scheduler's CA store, which this reconciler was not given")

// signer is the CA that signs the cluster's certificates: the given one,
// else the cluster's own, generated the first time.
func (m *MySQLTLS) signer(ctx context.Context, ns, name, uid string) (*pki.CA, error) {
	if m == nil || (m.Given == nil && m.Store == nil) {
		return nil, errNoTLS
	}
	if m.Given != nil {
		return m.Given, nil
	}
	stored, err := m.Store.EnsureClusterCA(ctx, ns, name, uid, func() (store.ClusterCA, error) {
		ca, err := pki.NewCA(fmt.Sprintf("Mysos MySQL CA %s/%s", ns, name), orDefault(m.CAValidity, DefaultCAValidity))
		if err != nil {
			return store.ClusterCA{}, err
		}
		return store.ClusterCA{CertPEM: string(ca.CertPEM), KeyPEM: string(ca.KeyPEM)}, nil
	})
	if err != nil {
		return nil, err
	}
	return pki.LoadCA([]byte(stored.CertPEM), []byte(stored.KeyPEM))
}

// Trusted is the PEM bundle of CA certificates that the cluster's servers
// are verified with: the given CA's, and the cluster's own CA's when it has
// one (it may have, from before the scheduler was given a CA), so that no
// certificate issued earlier stops being trusted. nil when there is none:
// the cluster never had TLS.
func (m *MySQLTLS) Trusted(ctx context.Context, ns, name, uid string) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	var out []byte
	if m.Given != nil {
		out = append(out, m.Given.CertPEM...)
	}
	if m.Store == nil {
		return out, nil
	}
	own, ok, err := m.Store.ClusterCA(ctx, ns, name, uid)
	if err != nil {
		return nil, err
	}
	if ok && !bytes.Contains(out, []byte(own.CertPEM)) {
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(out, own.CertPEM...)
	}
	return out, nil
}

// issue makes inst's TLS for a launch: a certificate for its name, valid
// for the host the offer gave it (an IP address or a DNS name, as clients
// and the other members reach it), with the trusted bundle and the key.
func (m *MySQLTLS) issue(ctx context.Context, c *spec.MySQLCluster, inst *store.Instance) (*taskspec.TLS, error) {
	meta := c.Metadata
	ca, err := m.signer(ctx, meta.Namespace, meta.Name, meta.UID)
	if err != nil {
		return nil, err
	}
	if inst.Hostname == "" {
		return nil, fmt.Errorf("instance %s has no host to issue its certificate for", inst.Name())
	}
	pair, err := ca.Issue(inst.Name(), []string{inst.Hostname}, orDefault(m.Validity, DefaultCertificateValidity))
	if err != nil {
		return nil, err
	}
	trusted, err := m.Trusted(ctx, meta.Namespace, meta.Name, meta.UID)
	if err != nil {
		return nil, err
	}
	return &taskspec.TLS{CA: string(trusted), Cert: string(pair.CertPEM), Key: string(pair.KeyPEM), Required: c.Spec.TLSRequired()}, nil
}

// memberCA is what a task that connects to the member at hostport (a
// donor, a backup's or the archiver's source) verifies it with: the
// cluster's trusted CAs when that member's task was launched with TLS, ""
// when it serves none (or is not one of the cluster's instances).
func (l *Launcher) memberCA(ctx context.Context, ns, name, uid, host string, port int) (string, error) {
	insts, err := l.Store.ListInstances(ctx, ns, name)
	if err != nil {
		return "", err
	}
	for _, inst := range insts {
		if inst.ClusterUID != uid || !inst.TLS || inst.Hostname != host || int(inst.Port) != port {
			continue
		}
		trusted, err := l.TLS.Trusted(ctx, ns, name, uid)
		if err != nil {
			return "", err
		}
		if len(trusted) == 0 {
			return "", fmt.Errorf("%s serves TLS, but the cluster has no CA to verify it with", net.JoinHostPort(host, strconv.Itoa(port)))
		}
		return string(trusted), nil
	}
	return "", nil
}

// anyTLS: some instance's task was launched with TLS.
func anyTLS(insts []*store.Instance) bool {
	for _, inst := range insts {
		if inst.TLS {
			return true
		}
	}
	return false
}

// replicationTLS is how replica should reach the primary: over TLS when
// the primary serves it, verified against the CA file the replica's own
// mysqld serves with (its ssl_ca, which the reconciler asks it for: the
// path is local to the replica's host and task). A replica launched
// without TLS (a cluster moving to TLS) has no CA file: it encrypts without
// verifying until its next launch.
func replicationTLS(primary, replica *store.Instance, v serverView) (on bool, caFile string) {
	if !primary.TLS {
		return false, ""
	}
	if replica.TLS {
		return true, v.status.TLSCA
	}
	return true, ""
}

// tlsMatches: the replica's source settings are the TLS wanted.
func tlsMatches(r *mysql.ReplicaStatus, on bool, caFile string) bool {
	if r.TLS != on {
		return false
	}
	return !on || (r.TLSVerify == (caFile != "") && r.TLSCAFile == caFile)
}

func describeTLS(on bool, caFile string) string {
	switch {
	case !on:
		return "without TLS (the primary serves none)"
	case caFile == "":
		return "over TLS, unverified (this replica was launched without TLS)"
	}
	return "over TLS, verifying the primary against " + caFile
}
