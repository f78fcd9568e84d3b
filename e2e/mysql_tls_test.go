package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/spec"
)

const tlsManifest = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: vault
spec:
  replicas: %d
  resources: {cpus: 100m, mem: 256Mi, disk: 512Mi}
  tls: {enabled: true, required: true}
  users:
    - name: app
      databases: [vault]
      privileges: [SELECT, INSERT, UPDATE, DELETE, CREATE]
`

// TestMySQLTLS runs a cluster with spec.tls {enabled, required} on the dev
// cluster: with 2 instances it becomes Ready (the reconciler reaches every
// server over TLS, the replica replicates over TLS); a client verifying the
// server's certificate and name with the CA from mysosctl credentials gets
// an encrypted session, also with the mariadb command line it suggests; a
// client without TLS is refused; scaled to 3, the new member is seeded
// from a donor over TLS; every replica replicates with Master_SSL_Allowed
// and Master_SSL_Verify_Server_Cert; rows written on the primary reach the
// replicas; and neither a password nor a private key shows in a process's
// command line or environment, a log, the dev cluster's state, or etcd in
// plaintext.
func TestMySQLTLS(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	client := testutil.RequireBinary(t, "mariadb", "apt-get install -y mariadb-client")
	c := startDevCluster(t, 3)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	dir := t.TempDir()
	apply := func(replicas int) spec.MySQLCluster {
		s.mustCtl("apply", "-f", writeFile(t, dir, "vault.yaml", fmt.Sprintf(tlsManifest, replicas)))
		s.mustCtl("wait", "clusters/vault", "--for=condition=Ready", "--timeout=180s")
		cl := getCluster(t, s, "vault")
		if cl.Status.Endpoints == nil || len(cl.Status.Endpoints.Replicas) != replicas-1 {
			t.Fatalf("status %+v; want a primary and %d replicas published", cl.Status, replicas-1)
		}
		return cl
	}
	cl := apply(2)

	// The CA, from mysosctl: written to a file, and the same on stdout.
	caFile := filepath.Join(dir, "vault-ca.pem")
	table := s.mustCtl("credentials", "vault", "app", "--ca-file", caFile)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err := pki.ParseCertificate(caPEM); err != nil || !ca.IsCA {
		t.Fatalf("mysosctl credentials --ca-file wrote no CA certificate (%v):\n%s", err, caPEM)
	}
	if out := s.mustCtl("credentials", "vault", "-o", "ca"); out != string(caPEM) {
		t.Fatalf("-o ca printed another CA:\n%s", out)
	}
	host, port, _ := net.SplitHostPort(cl.Status.Endpoints.Primary)
	if want := fmt.Sprintf("mariadb -h %s -P %s -u app -p --ssl-ca=%s --ssl-verify-server-cert", host, port, caFile); !strings.Contains(table, want) {
		t.Fatalf("credentials:\n%s\nwant the connect line %q", table, want)
	}
	password := strings.TrimSpace(s.mustCtl("credentials", "vault", "app", "-o", "password"))
	adminPW := strings.TrimSpace(s.mustCtl("credentials", "vault", "mysos_admin", "--all", "-o", "password"))

	// A client verifying the server's certificate against the CA and the
	// host it dialled gets an encrypted session; one without TLS is refused.
	primary := openTLS(t, cl.Status.Endpoints.Primary, "app", password, caPEM)
	if cipher := sessionCipher(t, primary); cipher == "" {
		t.Fatal("the client's session with the primary is not encrypted (Ssl_cipher empty)")
	}
	if err := pingPlain(cl.Status.Endpoints.Primary, "app", password); err == nil {
		t.Fatal("the primary accepted a client without TLS (spec.tls.required)")
	} else {
		t.Logf("a client without TLS: %v", err)
	}
	// The command line mysosctl suggests works as it says (the password
	// comes from an option file here, not a prompt).
	opts := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(opts, []byte(fmt.Sprintf("[client]\nuser=app\npassword=%s\n", password)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(client, "--defaults-extra-file="+opts, "-h", host, "-P", port, "--ssl-ca="+caFile, "--ssl-verify-server-cert",
		"--batch", "--skip-column-names", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'").CombinedOutput()
	if err != nil || len(strings.Fields(string(out))) != 2 {
		t.Fatalf("mariadb --ssl-ca --ssl-verify-server-cert: %v\n%s", err, out)
	}

	// Data, then a third member: it is seeded from a donor over TLS.
	mustExec(t, primary, "CREATE TABLE vault.secrets (id INT PRIMARY KEY, v VARCHAR(32))")
	mustExec(t, primary, "INSERT INTO vault.secrets VALUES (1, 'before scaling')")
	before := binlogTransactions(t, openTLS(t, cl.Status.Endpoints.Primary, "mysos_admin", adminPW, caPEM))
	cl = apply(3)
	seeded := instanceNamed(cl, "vault-2")
	if n := binlogTransactions(t, openTLS(t, fmt.Sprintf("%s:%d", seeded.Host, seeded.Port), "mysos_admin", adminPW, caPEM)); n >= before {
		t.Fatalf("vault-2 logged %d transactions, the primary had %d before it joined: it was not seeded from a copy", n, before)
	}

	// Every replica replicates from the primary over TLS, verifying it.
	for _, r := range cl.Status.Endpoints.Replicas {
		admin := openTLS(t, r, "mysos_admin", adminPW, caPEM)
		st := slaveStatus(t, admin)
		for col, want := range map[string]string{
			"Master_SSL_Allowed": "Yes", "Master_SSL_Verify_Server_Cert": "Yes",
			"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Master_Host": host, "Master_Port": port,
		} {
			if st[col] != want {
				t.Errorf("replica %s: %s = %q; want %q", r, col, st[col], want)
			}
		}
		if !strings.HasSuffix(st["Master_SSL_CA_File"], "/ca.pem") {
			t.Errorf("replica %s: Master_SSL_CA_File %q; want its own run directory's ca.pem", r, st["Master_SSL_CA_File"])
		}
	}

	// Rows written on the primary arrive on the replicas (the seeded one
	// got the first in its copy).
	mustExec(t, primary, "INSERT INTO vault.secrets VALUES (2, 'over TLS')")
	for _, r := range cl.Status.Endpoints.Replicas {
		replica := openTLS(t, r, "app", password, caPEM)
		testutil.WaitFor(t, 30*time.Second, "both rows on replica "+r, func() bool {
			var n int
			err := replica.QueryRow("SELECT COUNT(*) FROM vault.secrets WHERE id IN (1, 2)").Scan(&n)
			return err == nil && n == 2
		})
	}

	t.Run("NoPasswordOrKeyLeaks", func(t *testing.T) {
		secrets := []string{password, adminPW}
		// The instances' private keys, as their executors wrote them
		// (0600) into their run directories (named after the task id).
		for _, in := range getCluster(t, s, "vault").Status.Instances {
			sum := sha256.Sum256([]byte(in.TaskID))
			keyFile := filepath.Join(os.TempDir(), "mysos-"+hex.EncodeToString(sum[:6]), "server-key.pem")
			st, err := os.Stat(keyFile)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s's key %s: %v; want a file of mode 0600", in.Name, keyFile, err)
			}
			key, _ := os.ReadFile(keyFile)
			lines := pemBodyLines(key)
			if len(lines) == 0 {
				t.Fatalf("%s: no key in %s", in.Name, keyFile)
			}
			secrets = append(secrets, lines...)
		}
		// The cluster's CA key, sealed in etcd beside the passwords: opened
		// here with the scheduler's key file, as only the scheduler can.
		dump := s.etcdDump()
		caKey := clusterCAKey(t, s, dump, "/mysos/secrets/default/vault")
		secrets = append(secrets, pemBodyLines([]byte(caKey))...)
		places := map[string][]byte{"scheduler log": s.log.Bytes()}
		for key, value := range dump {
			places["etcd "+key] = value
		}
		for name, url := range stateURLs(c) {
			places[name] = httpGet(t, url)
		}
		addProcesses(t, places)
		addSandboxLogs(t, c, places)
		for where, content := range places {
			if bytes.Contains(content, []byte("PRIVATE KEY")) {
				t.Errorf("a private key appears in %s", where)
			}
			for _, secret := range secrets {
				if bytes.Contains(content, []byte(secret)) {
					t.Errorf("a password or private key appears in %s", where)
				}
			}
		}
	})

	s.mustCtl("delete", "clusters", "vault")
	s.mustCtl("wait", "clusters/vault", "--for=delete", "--timeout=60s")
}

// openTLS connects to endpoint over TLS only, verifying the server's
// certificate against caPEM and the host in endpoint.
func openTLS(t testing.TB, endpoint, user, password string, caPEM []byte) *sql.DB {
	t.Helper()
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	srv, err := mysql.Open(mysql.Endpoint{Host: host, Port: p, User: user, Password: password, CA: caPEM}, mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.DB()
}

// pingPlain tries endpoint without TLS.
func pingPlain(endpoint, user, password string) error {
	host, port, _ := net.SplitHostPort(endpoint)
	p, _ := strconv.Atoi(port)
	srv, err := mysql.Open(mysql.Endpoint{Host: host, Port: p, User: user, Password: password}, mysql.MariaDB)
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Ping(ctx)
}

// sessionCipher is the TLS cipher of one session of db ("" without TLS).
func sessionCipher(t testing.TB, db *sql.DB) string {
	t.Helper()
	var name, cipher string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	return cipher
}

// slaveStatus is SHOW SLAVE STATUS by column name.
func slaveStatus(t testing.TB, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW SLAVE STATUS: no row; the server is no replica")
	}
	vals, err := scanStrings(rows, len(cols))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out
}

// clusterCAKey opens the sealed secrets record at key with the scheduler's
// key file and returns the cluster's CA key (PEM).
func clusterCAKey(t testing.TB, s *scheduler, dump map[string][]byte, key string) string {
	t.Helper()
	ring, err := seal.LoadKeyFile(filepath.Join(s.dataDir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, ok := dump[key]
	if !ok || !seal.IsSealed(sealed) {
		t.Fatalf("%s: %q; want a sealed record", key, sealed)
	}
	plain, _, err := ring.Open(sealed, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		CA struct {
			Key string `json:"key"`
		} `json:"ca"`
	}
	if err := json.Unmarshal(plain, &rec); err != nil || !strings.Contains(rec.CA.Key, "PRIVATE KEY") {
		t.Fatalf("%s holds no CA key (%v)", key, err)
	}
	return rec.CA.Key
}

// pemBodyLines are the base64 lines of a PEM block (those long enough
// not to match by chance): what would show of a key copied anywhere,
// whatever its framing.
func pemBodyLines(b []byte) []string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}
