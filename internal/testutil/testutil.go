// Package testutil starts the real dependencies tests run against (embedded
// or external etcd) on free loopback ports, and enforces the rule that in CI
// a missing dependency fails a test instead of skipping it.
package testutil

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/store"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireBinary returns the path of a program the test needs. Without it the
// test fails in CI and is skipped elsewhere, with the command that installs it.
func RequireBinary(t testing.TB, name, installHint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (%s); run hack/install-deps.sh", name, installHint)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RequireRoot is for tests that change the machine's network or cgroups:
// without root they fail in CI (which runs as root) and are skipped
// elsewhere, saying what needs it.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := what + " needs root"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// EmbeddedEtcd starts an in-process etcd for the test and returns its
// endpoints; it is closed when the test ends.
func EmbeddedEtcd(t testing.TB) []string {
	t.Helper()
	var e *store.Embedded
	var err error
	// A port found free may be taken by another test process before etcd
	// binds it (packages test in parallel): try again with new ports.
	for attempt := 0; attempt < 5; attempt++ {
		e, err = store.StartEmbedded(store.EmbeddedConfig{
			Dir:       filepath.Join(t.TempDir(), "etcd"),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		})
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	return e.Endpoints()
}

// ExternalEtcd starts Debian's etcd binary as a separate process on free
// loopback ports and returns its endpoints; it is stopped when the test ends.
func ExternalEtcd(t testing.TB) []string {
	t.Helper()
	return StartEtcd(t).Endpoints
}

// Etcd is an etcd server process (Debian's etcd-server) on loopback, which
// a test can stop and start again on the same data and ports.
type Etcd struct {
	Endpoints []string
	t         testing.TB
	args      []string
	bin, dir  string
	cmd       *exec.Cmd
	log       *os.File
}

// StartEtcd starts an etcd server for the test and stops it when the test
// ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{t: t, bin: RequireBinary(t, "etcd", "apt-get install -y etcd-server"), dir: t.TempDir()}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	e.Endpoints = []string{clientURL}
	e.args = []string{"--name", "mysos-test", "--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "mysos-test=" + peerURL, "--logger=zap", "--log-level=error",
		"--heartbeat-interval=10", "--election-timeout=100"}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Start runs the server (again) and waits until it is healthy.
func (e *Etcd) Start() {
	e.t.Helper()
	log, err := os.OpenFile(filepath.Join(e.dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cmd, e.log = exec.Command(e.bin, e.args...), log
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("start etcd: %v", err)
	}
	// Wait on /health, not on a gRPC client: a client dialling too early backs
	// off for a second after the first refused connection.
	WaitFor(e.t, 20*time.Second, "external etcd /health", func() bool {
		resp, err := http.Get(e.Endpoints[0] + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop kills the server (a crash: etcd's write-ahead log keeps every
// acknowledged write); Start brings it back.
func (e *Etcd) Stop() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	e.log.Close()
	e.cmd = nil
}

// EtcdClient dials endpoints and closes the client when the test ends (before
// the etcd it talks to, since cleanups run last-in first-out).
func EtcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial etcd: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitFor polls cond until it holds or timeout passes. It is for waiting on
// a condition outside the test's control (a process becoming ready), never a
// fixed sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Eventually polls cond until it holds (true) or timeout passes (false),
// for a caller that explains a timeout itself.
func Eventually(timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// SecureEtcd is Debian's etcd serving only TLS, wanting client
// certificates, with etcd's user authentication on.
type SecureEtcd struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
	User, Password            string
}

// StartSecureEtcd starts a SecureEtcd for the test, with a fresh CA, and
// stops it when the test ends.
func StartSecureEtcd(t testing.TB) *SecureEtcd {
	t.Helper()
	bin := RequireBinary(t, "etcd", "apt-get install -y etcd-server")
	dir := t.TempDir()
	ca, err := pki.NewCA("etcd test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("etcd", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("mysos", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := &SecureEtcd{CAFile: write("ca.pem", ca.CertPEM), CertFile: write("client.pem", client.CertPEM),
		KeyFile: write("client-key.pem", client.KeyPEM), User: "root", Password: "etcd-" + rand.Text()}
	clientURL := fmt.Sprintf("https://127.0.0.1:%d", FreePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	e.Endpoints = []string{clientURL}
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", "secure", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "secure="+peerURL, "--logger=zap", "--log-level=error",
		"--cert-file", write("server.pem", server.CertPEM), "--key-file", write("server-key.pem", server.KeyPEM),
		"--client-cert-auth", "--trusted-ca-file", e.CAFile)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); log.Close() })
	cert, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tc := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	WaitFor(t, 20*time.Second, "secure etcd /health", func() bool {
		resp, err := httpc.Get(clientURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, TLS: tc, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.RoleAdd(ctx, "root"); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("etcd role add root: %v", err)
	}
	if _, err := cli.UserAdd(ctx, e.User, e.Password); err != nil {
		t.Fatalf("etcd user add: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, e.User, "root"); err != nil {
		t.Fatalf("etcd grant root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("etcd auth enable: %v", err)
	}
	return e
}

// Percentile is the p-th percentile (nearest rank) of ds; 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
