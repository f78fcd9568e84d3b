package router

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// server is a stand-in for a mysqld: it greets every connection with its
// name and then echoes what it gets, so a client learns where it landed.
type server struct {
	name string
	ln   net.Listener
}

func startServer(t testing.TB, name string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// fakeDiscovery hands the router whatever records the test sends.
type fakeDiscovery struct{ records chan Record }

func (d *fakeDiscovery) Watch(ctx context.Context) <-chan Record {
	out := make(chan Record)
	go func() {
		defer close(out)
		for {
			select {
			case r := <-d.records:
				select {
				case out <- r:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

type harness struct {
	t        testing.TB
	r        *Router
	disc     *fakeDiscovery
	rw, ro   string
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	finished chan struct{}
}

func startRouter(t testing.TB, maxLag time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, disc: &fakeDiscovery{records: make(chan Record)}, reg: prometheus.NewRegistry(), finished: make(chan struct{})}
	h.r = New(Config{Cluster: "default/shop", Discovery: h.disc, MaxReplicaLag: maxLag, Metrics: NewMetrics(h.reg),
		Log: slog.New(slog.DiscardHandler), DialTimeout: 2 * time.Second})
	rw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.rw, h.ro = rw.Addr().String(), ro.Addr().String()
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { _ = h.r.Run(ctx, rw, ro, time.Second); close(h.finished) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.finished
}

// publish hands the router a record and waits until it routes by it.
func (h *harness) publish(rec Record) {
	h.t.Helper()
	h.disc.records <- rec
	deadline := time.After(5 * time.Second)
	for {
		cur, ok := h.r.Current()
		if ok && cur.Epoch == rec.Epoch && cur.Primary == rec.Primary && len(cur.ReplicaLag) == len(rec.ReplicaLag) {
			return
		}
		select {
		case <-deadline:
			h.t.Fatalf("the router did not take epoch %d", rec.Epoch)
		case <-time.After(time.Millisecond):
		}
	}
}

// conn is a client connection through the router.
type conn struct {
	c  net.Conn
	rd *bufio.Reader
}

// connect connects to a port and returns where it landed ("" when the
// router closed the connection instead).
func (h *harness) connect(port string) (*conn, string) {
	h.t.Helper()
	c, err := net.Dial("tcp", port)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	cc := &conn{c: c, rd: bufio.NewReader(c)}
	line, err := cc.rd.ReadString('\n')
	if err != nil {
		return cc, ""
	}
	return cc, strings.TrimSpace(line)
}

// alive reports whether bytes still make the round trip.
func (c *conn) alive() bool {
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, "ping\n"); err != nil {
		return false
	}
	line, err := c.rd.ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestRoutesReadWriteToThePrimaryAndReadOnlyToReplicas(t *testing.T) {
	a, b, c := startServer(t, "a"), startServer(t, "b"), startServer(t, "c")
	h := startRouter(t, 5*time.Second)
	h.publish(Record{Primary: a.addr(), Replicas: []string{b.addr(), c.addr()}, Epoch: 1,
		ReplicaLag: map[string]float64{b.addr(): 0, c.addr(): 1}})
	rw, got := h.connect(h.rw)
	if got != "a" || !rw.alive() {
		t.Fatalf("read-write landed on %q; want the primary a", got)
	}
	seen := map[string]int{}
	for range 6 {
		ro, got := h.connect(h.ro)
		if !ro.alive() {
			t.Fatal("a read-only connection did not carry bytes")
		}
		seen[got]++
	}
	if seen["b"] != 3 || seen["c"] != 3 {
		t.Fatalf("read-only connections went to %v; want b and c in turn", seen)
	}

	// c falls behind the bound, b's lag becomes unknown: the read-only
	// port falls back to the primary, and open connections to them close.
	roB, _ := h.connect(h.ro)
	h.publish(Record{Primary: a.addr(), Replicas: []string{b.addr(), c.addr()}, Epoch: 1, ReplicaLag: map[string]float64{c.addr(): 6}})
	if roB.alive() {
		t.Fatal("a read-only connection to a replica outside the lag bound stayed open")
	}
	for range 3 {
		if _, got := h.connect(h.ro); got != "a" {
			t.Fatalf("with no replica within the bound, read-only landed on %q; want the primary", got)
		}
	}
	if !rw.alive() {
		t.Fatal("a lag change closed the read-write connection to an unchanged primary")
	}
	if n := testutil.ToFloat64(h.r.cfg.Metrics.connections.WithLabelValues(with("default/shop", "ro", "forwarded")...)); n != 10 {
		t.Fatalf("forwarded read-only connections counted %v; want 10", n)
	}
}

// A failover as routers see it: a record with no primary (the scheduler
// publishes one while it replaces the primary) closes read-write
// connections and refuses new ones; the next names the new primary; a
// stale record never wins.
func TestFailoverClosesOldConnectionsAndRefusesUntilAPrimary(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	h := startRouter(t, 0)
	h.publish(Record{Primary: a.addr(), Replicas: []string{b.addr()}, Epoch: 7})
	rw, got := h.connect(h.rw)
	if got != "a" {
		t.Fatalf("landed on %q", got)
	}
	ro, _ := h.connect(h.ro)

	h.publish(Record{Epoch: 8})
	if rw.alive() {
		t.Fatal("the read-write connection to the old primary stayed open after a record with no primary")
	}
	if _, got := h.connect(h.rw); got != "" {
		t.Fatalf("with no primary a read-write connection reached %q", got)
	}
	if ro.alive() {
		t.Fatal("a read-only connection to a replica no record lists stayed open")
	}

	h.publish(Record{Primary: b.addr(), Epoch: 9})
	if _, got := h.connect(h.rw); got != "b" {
		t.Fatalf("after the failover read-write landed on %q; want b", got)
	}
	h.disc.records <- Record{Primary: a.addr(), Epoch: 8} // late, stale
	h.publish(Record{Primary: b.addr(), Epoch: 9})        // the router has caught up with both
	if _, got := h.connect(h.rw); got != "b" {
		t.Fatalf("after a stale record read-write landed on %q; want b still", got)
	}
	if n := testutil.ToFloat64(h.r.cfg.Metrics.stale.WithLabelValues(with("default/shop")...)); n != 1 {
		t.Fatalf("stale records counted %v; want 1", n)
	}
	if n := testutil.ToFloat64(h.r.cfg.Metrics.connections.WithLabelValues(with("default/shop", "rw", "refused")...)); n != 1 {
		t.Fatalf("refused read-write connections counted %v; want 1", n)
	}
}

// A connection being dialled to the primary when a record replaces it is
// not handed over: the check after the dial sees the new record.
func TestConnectionDialledAcrossAChangeIsRefused(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	h := startRouter(t, 0)
	h.publish(Record{Primary: a.addr(), Epoch: 1})
	dialing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	base := h.r.dial
	h.r.mu.Lock()
	h.r.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		once.Do(func() { close(dialing); <-release })
		return base(ctx, network, addr)
	}
	h.r.mu.Unlock()
	done := make(chan string)
	go func() { _, got := h.connect(h.rw); done <- got }()
	<-dialing
	h.publish(Record{Primary: b.addr(), Epoch: 2})
	close(release)
	if got := <-done; got != "" {
		t.Fatalf("a connection dialled to the old primary across the change reached %q", got)
	}
	if _, got := h.connect(h.rw); got != "b" {
		t.Fatalf("the next connection landed on %q; want b", got)
	}
}

// Stopping closes the ports at once and open connections after the grace.
func TestShutdownClosesPortsThenConnections(t *testing.T) {
	a := startServer(t, "a")
	h := startRouter(t, 0)
	h.publish(Record{Primary: a.addr(), Epoch: 1})
	rw, _ := h.connect(h.rw)
	h.cancel()
	if !rw.alive() {
		t.Fatal("an open connection was cut before the grace period")
	}
	<-h.finished
	if rw.alive() {
		t.Fatal("an open connection outlived the router")
	}
	if c, err := net.DialTimeout("tcp", h.rw, time.Second); err == nil {
		c.Close()
		t.Fatal("the read-write port still accepts after shutdown")
	}
}
