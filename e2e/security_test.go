package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/pki"
)

// testPKI writes a CA, a server certificate for 127.0.0.1 (bundled with
// the CA, as a server sends its chain) and a client certificate.
type testPKI struct {
	serverCert, serverKey, ca string
	client                    tls.Certificate
	clientCert, clientKey     string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca, err := pki.NewCA("mysos e2e CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("mysos-scheduler", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("operator", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := testPKI{
		serverCert: writeFile(t, dir, "server.pem", string(server.CertPEM)+string(ca.CertPEM)),
		serverKey:  writeFile(t, dir, "server-key.pem", string(server.KeyPEM)),
		ca:         writeFile(t, dir, "ca.pem", string(ca.CertPEM)),
		clientCert: writeFile(t, dir, "client.pem", string(client.CertPEM)),
		clientKey:  writeFile(t, dir, "client-key.pem", string(client.KeyPEM)),
	}
	if p.client, err = tls.X509KeyPair(client.CertPEM, client.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAPIOverTLSWithRolesAndTokens: the scheduler serves HTTPS; mysosctl
// verifies it (and refuses another CA's certificate); a read-only token
// made through the API reads but cannot write, and stops working when
// deleted; with a client CA, requests without a client certificate are
// refused while the Mesos fetcher can still download the executor.
func TestAPIOverTLSWithRolesAndTokens(t *testing.T) {
	p := newTestPKI(t)
	s := startScheduler(t, nil, "--tls-cert", p.serverCert, "--tls-key", p.serverKey)

	if out := s.mustCtl("whoami"); !strings.Contains(out, "token admin, role admin, every namespace") {
		t.Fatalf("whoami over TLS: %q", out)
	}
	if resp, err := http.Get("http://" + s.addr + "/api/v1/clusters"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP to the TLS port answered %d %s", resp.StatusCode, body)
		}
	}
	other := newTestPKI(t)
	if r := s.ctl("--certificate-authority", other.ca, "whoami"); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("mysosctl trusting another CA: exit %d %q; want a certificate error", r.code, r.stderr)
	}

	out := s.mustCtl("token", "create", "viewer", "--role", "read-only", "--namespace-scope", "shop")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if len(secret) != 64 {
		t.Fatalf("token create printed %q; want the 64-hex-digit secret last", out)
	}
	spec := writeFile(t, t.TempDir(), "c.yaml", "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata:\n  name: orders\nspec:\n  replicas: 1\n")
	if r := s.ctl("--token", secret, "-n", "shop", "apply", "-f", spec); r.code == 0 || !strings.Contains(r.stderr, "needs role admin") {
		t.Fatalf("read-only token applies: exit %d %q; want refused for its role", r.code, r.stderr)
	}
	if r := s.ctl("--token", secret, "-n", "other", "get", "clusters"); r.code == 0 || !strings.Contains(r.stderr, `namespace "other"`) {
		t.Fatalf("namespace-scoped token reads another namespace: exit %d %q", r.code, r.stderr)
	}
	s.mustCtl("quota", "set", "-n", "shop", "--instances", "2", "--mem", "100Mi")
	if r := s.ctl("-n", "shop", "apply", "-f", spec); r.code == 0 || !strings.Contains(r.stderr, "exceeds the quota") {
		t.Fatalf("apply beyond the quota: exit %d %q", r.code, r.stderr)
	}
	s.mustCtl("quota", "set", "-n", "shop", "--instances", "2")
	s.mustCtl("-n", "shop", "apply", "-f", spec)
	if out := s.mustCtl("quota", "get", "-n", "shop"); len(strings.Fields(out)) < 6 || strings.Join(strings.Fields(out)[3:6], " ") != "instances 1 2" {
		t.Fatalf("quota get: %q", out)
	}
	if r := s.ctl("--token", secret, "-n", "shop", "get", "clusters", "orders"); r.code != 0 || !strings.Contains(r.stdout, "orders") {
		t.Fatalf("read-only token reads its namespace: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if out := s.mustCtl("token", "list"); !strings.Contains(out, "viewer") || strings.Contains(out, secret) {
		t.Fatalf("token list: %q; want viewer listed and no secret", out)
	}
	s.mustCtl("token", "delete", "viewer")
	if r := s.ctl("--token", secret, "-n", "shop", "get", "clusters"); r.code == 0 || !strings.Contains(r.stderr, "invalid bearer token") {
		t.Fatalf("deleted token: exit %d %q; want 401", r.code, r.stderr)
	}

	mtls := startSchedulerAs(t, &p.client, nil, "--tls-cert", p.serverCert, "--tls-key", p.serverKey, "--tls-client-ca", p.ca)
	if r := mtls.ctl("whoami"); r.code == 0 {
		t.Fatalf("no client certificate: exit 0 %q; want refused", r.stdout)
	}
	if out := mtls.mustCtl("--client-certificate", p.clientCert, "--client-key", p.clientKey, "whoami"); !strings.Contains(out, "token admin") {
		t.Fatalf("whoami with a client certificate: %q", out)
	}
	anonymous := *mtls
	anonymous.clientCert = nil
	resp, err := anonymous.httpClient().Get(mtls.url() + "/artifacts/mysos-executor")
	if err != nil {
		t.Fatalf("executor download without a client certificate: %v", err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n < 1<<20 {
		t.Fatalf("executor download without a client certificate: %d, %d bytes", resp.StatusCode, n)
	}
}

// TestSchedulerOnSecuredEtcd: the scheduler reaches an external etcd that
// wants TLS client certificates and a user's password, and names the
// problem when the password is wrong.
func TestSchedulerOnSecuredEtcd(t *testing.T) {
	e := testutil.StartSecureEtcd(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "etcd-password", e.Password+"\n")
	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	secure := []string{"--etcd-ca-file", e.CAFile, "--etcd-cert-file", e.CertFile, "--etcd-key-file", e.KeyFile, "--etcd-user", e.User}
	s := startScheduler(t, e.Endpoints, append(secure, "--etcd-password-file", pw)...)
	spec := writeFile(t, dir, "c.yaml", "apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata:\n  name: orders\nspec:\n  replicas: 1\n")
	s.mustCtl("apply", "-f", spec)
	if out := s.mustCtl("get", "clusters", "orders"); !strings.Contains(out, "orders") {
		t.Fatalf("get after apply on a secured etcd: %q", out)
	}

	wrong := writeFile(t, dir, "wrong-password", "nope")
	args := append([]string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--etcd-endpoints", e.Endpoints[0], "--etcd-password-file", wrong}, secure...)
	out, err := exec.Command(filepath.Join(binDir, "mysos-scheduler"), args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "authentication failed") {
		t.Fatalf("scheduler with a wrong etcd password: %v\n%s\nwant it to stop, saying authentication failed", err, out)
	}
}

// TestSchedulerAuthenticatesToMesos: against a master that authenticates
// frameworks (Mesos' --authenticate_http_frameworks with --credentials),
// the scheduler subscribes with its principal and the secret from
// --mesos-secret-file; with a wrong secret it does not, and says why; a
// request without credentials gets 401.
func TestSchedulerAuthenticatesToMesos(t *testing.T) {
	c := startDevClusterWith(t, devcluster.Config{Agents: 1, FrameworkCredentials: map[string]string{"mysos": "mesos-secret"}})
	resp, err := http.Post(c.MasterURL()+"/api/v1/scheduler", "application/json", strings.NewReader(`{"type":"SUBSCRIBE"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("a call without credentials: %d %v; want 401 asking for Basic", resp.StatusCode, resp.Header)
	}

	dir := t.TempDir()
	good := writeFile(t, dir, "secret", "mesos-secret\n")
	s := startMesosScheduler(t, c, nil, "--mesos-principal", "mysos", "--mesos-secret-file", good)
	waitSubscribed(t, s, c)

	bad := writeFile(t, dir, "wrong", "guess\n")
	wrong := startMesosScheduler(t, c, nil, "--mesos-principal", "mysos", "--mesos-secret-file", bad)
	testutil.WaitFor(t, 30*time.Second, "the scheduler with a wrong secret to report why it is not subscribed", func() bool {
		body := wrong.readyz()
		return strings.Contains(body, "[!]mesos") && strings.Contains(strings.ToLower(body), "auth")
	})
	if strings.Contains(wrong.log.String(), "mesos-secret") || strings.Contains(s.log.String(), "mesos-secret") {
		t.Fatal("the Mesos secret appears in a scheduler's log")
	}
}
