// Package e2e runs Mysos' binaries as a user would: a real mysos-scheduler
// process on a real etcd (embedded, or Debian's as an external cluster),
// driven by the real mysosctl.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/internal/testutil"
)

// binDir holds the binaries TestMain builds once for every test.
var binDir string

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(runWriter(spec)) // a writer the partition test runs inside an agent's namespace
	}
	dir, err := os.MkdirTemp("", "mysos-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds Mysos' commands and, from the tools module, the
// third-party Mesos clients the dev cluster is held against.
func buildBinaries(dir string) error {
	mysos := exec.Command("go", "build", "-o", dir+"/", "../cmd/...")
	examples := exec.Command("go", "build", "-o", dir+"/",
		"github.com/mesos/mesos-go/api/v1/cmd/example-scheduler",
		"github.com/mesos/mesos-go/api/v1/cmd/example-executor",
		"github.com/mesos/mesos-go/api/v1/cmd/msh")
	examples.Dir = "../tools/mesos-examples"
	for _, cmd := range []*exec.Cmd{mysos, examples} {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
	}
	return nil
}

// scheduler is a mysos-scheduler process under test.
type scheduler struct {
	t         testing.TB
	dataDir   string
	endpoints []string // external etcd; empty means embedded
	args      []string
	cmd       *exec.Cmd
	addr      string
	log       *lockedBuffer
	exited    chan struct{}
	// clientCert is presented to a scheduler started with --tls-client-ca.
	clientCert *tls.Certificate
}

// startScheduler starts a scheduler on free loopback ports; endpoints selects
// an external etcd.
func startScheduler(t testing.TB, endpoints []string, extraArgs ...string) *scheduler {
	t.Helper()
	return startSchedulerAs(t, nil, endpoints, extraArgs...)
}

// startSchedulerAs is startScheduler for a scheduler that wants clientCert.
func startSchedulerAs(t testing.TB, clientCert *tls.Certificate, endpoints []string, extraArgs ...string) *scheduler {
	t.Helper()
	s := &scheduler{t: t, dataDir: t.TempDir(), endpoints: endpoints, clientCert: clientCert}
	s.addr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	s.args = []string{"--data-dir", s.dataDir, "--listen", s.addr, "--log-level", "debug"}
	if len(endpoints) > 0 {
		s.args = append(s.args, "--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-prefix", "/"+strings.ReplaceAll(t.Name(), "/", "-"))
	} else {
		s.args = append(s.args,
			"--embedded-etcd-client-url", fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
			"--embedded-etcd-peer-url", fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)))
	}
	s.args = append(s.args, extraArgs...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *scheduler) start() {
	s.t.Helper()
	s.log = &lockedBuffer{}
	s.cmd = exec.Command(filepath.Join(binDir, "mysos-scheduler"), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = s.cmd.Wait(); close(exited) }()
	testutil.WaitFor(s.t, 30*time.Second, "scheduler /readyz", func() bool {
		select {
		case <-exited:
			s.t.Fatalf("scheduler exited early:\n%s", s.log)
		default:
		}
		resp, err := s.httpClient().Get(s.url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop sends SIGTERM and waits for the process to exit.
func (s *scheduler) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	terminate(s.t, "scheduler", s.cmd, s.exited, s.log)
	s.cmd = nil
}

// terminate sends a process SIGTERM and waits for it to exit (SIGKILL after
// 30 s, which fails t); when t failed, it logs the process's output.
func terminate(t testing.TB, name string, cmd *exec.Cmd, exited <-chan struct{}, log *lockedBuffer) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("%s did not exit within 30s of SIGTERM", name)
		<-exited
	}
	if t.Failed() {
		t.Logf("%s log:\n%s", name, log)
	}
}

// etcdDump reads every key and value of the scheduler's etcd (embedded or
// external), as someone with a copy of its data would see them.
func (s *scheduler) etcdDump() map[string][]byte {
	s.t.Helper()
	endpoints := s.endpoints
	for i := 0; i+1 < len(s.args); i++ {
		if s.args[i] == "--embedded-etcd-client-url" {
			endpoints = []string{s.args[i+1]}
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "", clientv3.WithFromKey())
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out
}

// tlsFiles are the scheduler's --tls-cert and --tls-client-ca, if given.
func (s *scheduler) tlsFiles() (cert, clientCA string) {
	for i := 0; i+1 < len(s.args); i++ {
		switch s.args[i] {
		case "--tls-cert":
			cert = s.args[i+1]
		case "--tls-client-ca":
			clientCA = s.args[i+1]
		}
	}
	return cert, clientCA
}

// url is the API's base URL, https when the scheduler serves TLS.
func (s *scheduler) url() string {
	if cert, _ := s.tlsFiles(); cert != "" {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// httpClient trusts the scheduler's certificate (a bundle ending in its CA)
// and, when it wants one, presents s.clientCert.
func (s *scheduler) httpClient() *http.Client {
	cert, _ := s.tlsFiles()
	if cert == "" {
		return http.DefaultClient
	}
	raw, err := os.ReadFile(cert)
	if err != nil {
		s.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(raw)
	cfg := &tls.Config{RootCAs: roots}
	if s.clientCert != nil {
		cfg.Certificates = []tls.Certificate{*s.clientCert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func (s *scheduler) restart() {
	s.stop()
	s.start()
}

// result of one mysosctl run.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs mysosctl against s with the config the scheduler wrote.
func (s *scheduler) ctl(args ...string) result {
	return s.ctlEnv(nil, args...)
}

func (s *scheduler) ctlEnv(env []string, args ...string) result {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "mysosctl"), args...)
	cmd.Env = append(os.Environ(), "MYSOS_CONFIG="+filepath.Join(s.dataDir, "mysosctl.yaml"), "HOME="+s.dataDir)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// mustCtl runs mysosctl and fails the test unless it exits 0.
func (s *scheduler) mustCtl(args ...string) string {
	s.t.Helper()
	r := s.ctl(args...)
	if r.code != 0 {
		s.t.Fatalf("mysosctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedBuffer collects a process's output; the test may read it while the
// process still writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *lockedBuffer) String() string { return string(b.Bytes()) }
