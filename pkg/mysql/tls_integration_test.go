package mysql_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
	"github.com/mysos-project/mysos/pkg/pki"
)

// TestTLSAgainstMariaDB runs two real servers as Mysos configures them
// with spec.tls {enabled, required}: a connection with the CA uses TLS and
// verifies the server's name, one without TLS is refused, one trusting
// another CA fails, and a replica replicates over TLS, verifying its
// source with the CA file it serves with (ssl_ca).
func TestTLSAgainstMariaDB(t *testing.T) {
	ca, err := pki.NewCA("mysos test", time.Hour)
	must(t, err)
	pair, err := ca.Issue("node", []string{"127.0.0.1"}, time.Hour)
	must(t, err)
	dir := t.TempDir()
	file := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, content, 0o600))
		return p
	}
	caFile := file("ca.pem", ca.CertPEM)
	cnf := []string{"ssl_ca=" + caFile, "ssl_cert=" + file("cert.pem", pair.CertPEM),
		"ssl_key=" + file("key.pem", pair.KeyPEM), "require_secure_transport=ON"}
	nodes := mysqltest.StartN(t, 2, mysqltest.Options{Config: cnf, CA: ca.CertPEM})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	open := func(n *mysqltest.Instance, caPEM []byte) *mysql.Server {
		ep := n.Endpoint()
		ep.CA = caPEM
		srv, err := mysql.Open(ep, mysql.MariaDB)
		must(t, err)
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	primary, replica := open(nodes[0], ca.CertPEM), open(nodes[1], ca.CertPEM)
	cipher, err := primary.GlobalStatus(ctx, "Ssl_cipher")
	must(t, err)
	var sessionCipher string
	must(t, primary.DB().QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").Scan(&sessionCipher))
	if sessionCipher == "" {
		t.Fatalf("the connection with the CA does not use TLS (Ssl_cipher %q, global %q)", sessionCipher, cipher)
	}

	plainEP := nodes[0].Endpoint()
	plainEP.CA = nil
	plainSrv, err := mysql.Open(plainEP, mysql.MariaDB)
	must(t, err)
	defer plainSrv.Close()
	// MariaDB 10.11 refuses it as "Access denied" (the same account gets in
	// over TLS, just above).
	if err := plainSrv.Ping(ctx); err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("a connection without TLS: %v; want it refused (require_secure_transport)", err)
	}
	other, err := pki.NewCA("someone else", time.Hour)
	must(t, err)
	if err := open(nodes[0], other.CertPEM).Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a connection trusting another CA: %v; want a certificate error", err)
	}
	wrongName := nodes[0].Endpoint()
	wrongName.Host, wrongName.CA = "localhost", ca.CertPEM
	if srv, err := mysql.Open(wrongName, mysql.MariaDB); err == nil {
		defer srv.Close()
		if err := srv.Ping(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("a connection to a name the certificate lacks: %v; want a certificate error", err)
		}
	}

	st, err := replica.Status(ctx)
	must(t, err)
	if st.TLSCA != caFile {
		t.Fatalf("Status().TLSCA = %q; want %q", st.TLSCA, caFile)
	}
	src := nodes[0].Source()
	src.TLS, src.CAFile = true, st.TLSCA
	must(t, primary.SetReadOnly(ctx, false))
	must(t, primary.Exec(ctx, "CREATE DATABASE app"))
	must(t, primary.Exec(ctx, "CREATE TABLE app.t (id INT PRIMARY KEY)"))
	must(t, replica.ReplicateFrom(ctx, src))
	must(t, primary.Exec(ctx, "INSERT INTO app.t VALUES (1)"))
	testutil.WaitFor(t, 30*time.Second, "the row on the replica over TLS", func() bool {
		var n int
		err := replica.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM app.t").Scan(&n)
		return err == nil && n == 1
	})
	st, err = replica.Status(ctx)
	must(t, err)
	if r := st.Replica; r == nil || !r.IORunning || !r.TLS || !r.TLSVerify || r.TLSCAFile != caFile {
		t.Fatalf("replica status %+v; want replicating with TLS, verified against %s", r, caFile)
	}

	// Without TLS the replica cannot reach a source that requires it, and
	// switching it off clears the earlier settings.
	plain := nodes[0].Source()
	must(t, replica.ReplicateFrom(ctx, plain))
	testutil.WaitFor(t, 30*time.Second, "the plaintext replica refused", func() bool {
		st, err := replica.Status(ctx)
		return err == nil && st.Replica != nil && !st.Replica.TLS && !st.Replica.TLSVerify && st.Replica.LastIOErrno != 0
	})
}
