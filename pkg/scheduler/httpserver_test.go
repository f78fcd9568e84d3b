package scheduler

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowHeadersAreCutOff: a client that trickles its headers (slowloris)
// loses its connection once the header timeout passes, and oversized
// headers are refused; a normal request is served.
func TestSlowHeadersAreCutOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := apiLimits
	limits.readHeader = 200 * time.Millisecond
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), limits)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// The server must end the connection by itself; the deadline only
	// bounds the test if it does not.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection with unfinished headers open for 10 s")
	}
	if n > 0 && !strings.Contains(string(buf[:n]), "408") && !strings.Contains(string(buf[:n]), "400") {
		t.Fatalf("unfinished headers answered %q", buf[:n])
	}

	big, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*limits.maxHeaderBytes) + "\r\n\r\n"
	go func() { _, _ = io.WriteString(big, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v %v; want 431", resp, err)
	}
	resp.Body.Close()

	ok, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || ok.StatusCode != http.StatusOK {
		t.Fatalf("normal request: %v %v", ok, err)
	}
	ok.Body.Close()
}

// The executor artifact: served for its own digest or none, refused for
// another (a pre-upgrade URI), so that no fetcher cache keeps this binary
// under a URI that names other content.
func TestExecutorArtifactDigest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mysos-executor")
	if err := os.WriteFile(path, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := loadExecutorArtifact(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(withArtifact(http.NotFoundHandler(), a, false))
	defer srv.Close()
	for query, want := range map[string]int{"": 200, "?sha256=" + a.sha256: 200, "?sha256=0123": 404} {
		resp, err := http.Get(srv.URL + ArtifactPath + query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d %q; want %d", ArtifactPath+query, resp.StatusCode, body, want)
		}
		if want == 200 && (string(body) != "binary" || resp.Header.Get("X-Checksum-Sha256") != a.sha256) {
			t.Errorf("GET %s: body %q, checksum %q", ArtifactPath+query, body, resp.Header.Get("X-Checksum-Sha256"))
		}
	}
}

// --debug-listen serves Go's profiles on their own listener, and stops
// with the context.
func TestServeDebug(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	addr, err := serveDebug(ctx, &wg, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", resp.StatusCode, body)
	}
	cancel()
	wg.Wait()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("profiles still served after the context ended")
	}
	if _, err := serveDebug(context.Background(), &wg, "127.0.0.1:-1", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--debug-listen") {
		t.Fatalf("a bad address: %v", err)
	}
}
