package apiserver_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/store"
)

// multipartBody is a form with a file part of size bytes, as the legacy
// endpoints parse it (ParseMultipartForm(1 MiB): the rest goes to disk).
func multipartBody(t *testing.T, size int) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("password", "x")
	fw, err := mw.CreateFormFile("blob", "blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(bytes.Repeat([]byte("A"), size)); err != nil {
		t.Fatal(err)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func multipartTemps(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "multipart-*"))
	return m
}

// TestLegacyBodiesAreBounded: the legacy routes (no token) answer 413 to
// bodies over 1 MiB, and leave no upload in $TMPDIR (the delete parses a
// clone of the request, which net/http's own clean-up never sees).
func TestLegacyBodiesAreBounded(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	a := newAPI(t)
	ct, body := multipartBody(t, 3<<20)

	for _, method := range []string{"POST", "DELETE"} {
		req, _ := http.NewRequest(method, a.srv.URL+"/clusters/victim", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s /clusters/victim with a %d-byte body: %d %q; want 413", method, len(body), resp.StatusCode, strings.TrimSpace(string(raw)))
		}
	}
	// The handler removed what it spilled before it answered.
	if left := multipartTemps(t, tmp); len(left) > 0 {
		var total int64
		for _, f := range left {
			if fi, err := os.Stat(f); err == nil {
				total += fi.Size()
			}
		}
		t.Errorf("the legacy API left %d upload(s), %d bytes, in $TMPDIR after the requests ended: %v", len(left), total, left)
	}
}

// blackhole accepts TCP connections and never answers, like a NameNode
// that hangs (or an attacker's listener).
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestBackupDestinationBoundsRequest: an HDFS destination that accepts
// connections and never answers does not hold a request past its timeout
// (the HDFS client takes no context); and only admins may name one.
func TestBackupDestinationBoundsRequest(t *testing.T) {
	st := store.New(testutil.EtcdClient(t, testutil.EmbeddedEtcd(t)), "/mysos")
	h, err := apiserver.New(apiserver.Config{
		Store: st, Token: token, FileTokens: fileTokens(), RequestTimeout: 500 * time.Millisecond,
		Backups: backupService{Store: st, Backups: reconciler.Backups{DefaultDestination: "file://" + t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // runs after blackhole's cleanup has freed the handler
	hole := blackhole(t)

	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/namespaces/team-a/clusters/nosuch/backups?destination=hdfs://"+hole+"/backups", nil)
	req.Header.Set("Authorization", bearer(token))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a backup listing from a destination that never answers did not end with its request (RequestTimeout 500ms): %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("listing from a destination that never answers: %d; want an error", resp.StatusCode)
	}
	req.Header.Set("Authorization", bearer(teamReaderToken))
	if resp, err = client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a read-only token names a destination: %v %v; want 403", resp, err)
	}
	resp.Body.Close()
}

// TestForgedTokenRecordIsNoToken: a token record written straight into
// etcd by someone without the secrets key (anyone on the scheduler's host
// can reach the embedded etcd) does not open, so it is no token.
func TestForgedTokenRecordIsNoToken(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	const forged = "forged-by-a-local-user"
	record := `{"name":"backdoor","role":"admin","sha256":"` + apiserver.HashToken(forged) + `"}`
	if _, err := a.etcd.Put(context.Background(), "/mysos/tokens/by-hash/"+apiserver.HashToken(forged), record); err != nil {
		t.Fatal(err)
	}
	a.create(validYAML)
	code, body := a.do("GET", "/api/v1/namespaces/default/clusters/shop/credentials?all=true", "", "", bearer(forged))
	if code == http.StatusOK {
		t.Errorf("a token written straight into etcd reads every password: %d %s", code, body)
	}
}

// TestTokenFileMode: the admin token of every namespace is refused in a
// file others may read, as the key ring and the tokens file are.
func TestTokenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := apiserver.LoadOrCreateToken(path); err == nil {
		t.Error("a world-readable --token-file (the admin token of every namespace) is accepted")
	}
}

// TestTokenNameInURLIsChecked: a token name in a URL is a DNS label, or
// 400 before it reaches the store.
func TestTokenNameInURLIsChecked(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	code, body := a.do("DELETE", "/api/v1/tokens/A%2F..%2Fx", "", "")
	if code != http.StatusBadRequest {
		t.Errorf("DELETE of token name %q: %d %s; want 400", "A/../x", code, strings.TrimSpace(body))
	}
}

// TestMetricsWantATokenOfEveryNamespace: /metrics shows every namespace,
// so when it wants a token, one limited to namespaces is refused.
func TestMetricsWantATokenOfEveryNamespace(t *testing.T) {
	st := store.New(testutil.EtcdClient(t, testutil.EmbeddedEtcd(t)), "/mysos")
	reg := metrics.New()
	reg.Clusters.Observe("team-b", "secret-project", "Ready", 3, nil)
	h, err := apiserver.New(apiserver.Config{Store: st, Token: token, FileTokens: fileTokens(),
		Anonymous: []string{apiserver.EndpointHealthz, apiserver.EndpointReadyz}, Metrics: reg.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", bearer(teamReaderToken))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(raw), "secret-project") || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a team-a read-only token reads /metrics: %d; want 403", resp.StatusCode)
	}
}
