package router

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// fakeClusters is a store of specs the test edits; every edit sends the
// cluster's key, as the store's watch does.
type fakeClusters struct {
	mu    sync.Mutex
	specs map[string]*spec.MySQLCluster
	gets  map[string]int
	keys  chan string
}

func newFakeClusters() *fakeClusters {
	return &fakeClusters{specs: map[string]*spec.MySQLCluster{}, gets: map[string]int{}, keys: make(chan string)}
}

func (f *fakeClusters) WatchKeys(context.Context) <-chan string { return f.keys }

func (f *fakeClusters) Get(_ context.Context, ns, name string) (*spec.MySQLCluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[ns+"/"+name]++
	c, ok := f.specs[ns+"/"+name]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

func (f *fakeClusters) List(_ context.Context, ns string) ([]*spec.MySQLCluster, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*spec.MySQLCluster
	for _, c := range f.specs {
		if ns == "" || c.Metadata.Namespace == ns {
			cp := *c
			out = append(out, &cp)
		}
	}
	return out, 1, nil
}

// removeUnseen deletes a cluster without telling the manager, as a
// deletion during a broken watch goes unseen.
func (f *fakeClusters) removeUnseen(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.specs, key)
}

func (f *fakeClusters) getCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[key]
}

// put stores a cluster with router ports (nil: none) and tells the manager.
func (f *fakeClusters) put(key, uid string, router *spec.RouterSpec) {
	ns, name, _ := strings.Cut(key, "/")
	f.mu.Lock()
	f.specs[key] = &spec.MySQLCluster{Metadata: spec.ObjectMeta{Namespace: ns, Name: name, UID: uid}, Spec: spec.ClusterSpec{Router: router}}
	f.mu.Unlock()
	f.keys <- key
}

func (f *fakeClusters) remove(key string) {
	f.mu.Lock()
	delete(f.specs, key)
	f.mu.Unlock()
	f.keys <- key
}

// staticDiscovery always names the same primary.
type staticDiscovery struct{ primary string }

func (d staticDiscovery) Watch(ctx context.Context) <-chan Record {
	out := make(chan Record)
	go func() {
		defer close(out)
		select {
		case out <- Record{Primary: d.primary, Epoch: 1}:
			<-ctx.Done()
		case <-ctx.Done():
		}
	}()
	return out
}

type eventLog struct {
	mu     sync.Mutex
	events []spec.Event
}

func (l *eventLog) RecordEvent(_ context.Context, ev spec.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	return nil
}

func (l *eventLog) withReason(reason string) []spec.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []spec.Event
	for _, ev := range l.events {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// landing dials addr and returns the name of the server the connection
// reached, or "" when nothing accepted it.
func landing(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [64]byte
	n, _ := c.Read(buf[:])
	return strings.TrimSpace(string(buf[:n]))
}

func waitLanding(t *testing.T, addr, want string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("a connection to %s reaches %q", addr, want), func() bool {
		return landing(t, addr) == want
	})
}

// TestManagerFollowsTheSpecs: the scheduler-embedded mode opens the ports
// a cluster's spec names, moves them when the spec changes (connections
// already open go on), reports a port it cannot open once and takes it
// when it frees up, closes them when spec.router or the cluster goes, and
// closes everything when it stops.
func TestManagerFollowsTheSpecs(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	clusters, events := newFakeClusters(), &eventLog{}
	reg := prometheus.NewRegistry()
	m := NewManager(ManagerConfig{
		Clusters: clusters, Events: events, Host: "127.0.0.1", ShutdownGrace: time.Minute, RetryInterval: 10 * time.Millisecond,
		Discovery: func(ns, name string) Discovery {
			return staticDiscovery{primary: map[string]string{"one": a.addr(), "two": b.addr()}[name]}
		},
		Metrics: NewMetrics(reg), Log: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = m.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	port := func() int32 { return int32(testutil.FreePort(t)) }
	addr := func(p int32) string { return fmt.Sprintf("127.0.0.1:%d", p) }

	p1 := port()
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p1})
	waitLanding(t, addr(p1), "a")
	if ev := events.withReason("RouterListening"); len(ev) != 1 || ev[0].Cluster != "one" || !strings.Contains(ev[0].Message, "read-write "+addr(p1)) {
		t.Fatalf("listening events = %+v; want one naming the read-write address", ev)
	}

	// The spec moves the router: the old port closes, the new ones open,
	// and a connection made before the move goes on.
	before, err := net.Dial("tcp", addr(p1))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	held := &conn{c: before, rd: bufio.NewReader(before)}
	_ = before.SetReadDeadline(time.Now().Add(5 * time.Second))
	if greeting, _ := held.rd.ReadString('\n'); greeting != "a\n" || !held.alive() {
		t.Fatalf("a connection through the first port reached %q", greeting)
	}
	p2, p3 := port(), port()
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p2, ReadOnlyPort: p3})
	waitLanding(t, addr(p3), "a") // no replicas: read-only falls back to the primary
	if got := landing(t, addr(p1)); got != "" {
		t.Fatalf("the port the spec no longer names still routes (to %q)", got)
	}
	if got := landing(t, addr(p2)); got != "a" {
		t.Fatalf("the new read-write port reaches %q", got)
	}
	if !held.alive() {
		t.Fatal("a connection open before the move was cut")
	}
	before.Close()

	// A second cluster asks for a port the first holds (two applies raced
	// past the API's check): reported once, retried, taken when freed.
	clusters.put("shop/two", "uid-2", &spec.RouterSpec{ReadWritePort: p2})
	testutil.WaitFor(t, 10*time.Second, "a warning for the taken port, then retries", func() bool {
		return len(events.withReason("RouterPortUnavailable")) > 0 && clusters.getCount("shop/two") >= 4
	})
	warnings := events.withReason("RouterPortUnavailable")
	if len(warnings) != 1 || warnings[0].Type != "Warning" || warnings[0].Cluster != "two" ||
		!strings.Contains(warnings[0].Message, fmt.Sprintf("spec.router.readWritePort %d", p2)) {
		t.Fatalf("warnings = %+v; want one naming the field and port", warnings)
	}
	if got := landing(t, addr(p2)); got != "a" {
		t.Fatalf("the port's first holder lost it: reaches %q", got)
	}
	clusters.remove("shop/one")
	waitLanding(t, addr(p2), "b")
	if got := landing(t, addr(p3)); got != "" {
		t.Fatalf("a deleted cluster's port still routes (to %q)", got)
	}

	// spec.router removed: the port closes; the manager's stop closes the rest.
	clusters.put("shop/two", "uid-2", nil)
	testutil.WaitFor(t, 10*time.Second, "the port closes", func() bool { return landing(t, addr(p2)) == "" })
	p4 := port()
	clusters.put("shop/two", "uid-2", &spec.RouterSpec{ReadOnlyPort: p4})
	waitLanding(t, addr(p4), "b")
	cancel()
	<-stopped
	if got := landing(t, addr(p4)); got != "" {
		t.Fatalf("a stopped manager's port still routes (to %q)", got)
	}
}

// runManager runs a manager of the clusters in clusters, routing "one" to
// primary, and stops it when the test ends.
func runManager(t *testing.T, clusters *fakeClusters, primary string, tune func(*ManagerConfig, *Manager)) (*prometheus.Registry, *Metrics, *eventLog) {
	reg, events := prometheus.NewRegistry(), &eventLog{}
	metrics := NewMetrics(reg)
	cfg := ManagerConfig{
		Clusters: clusters, Events: events, Host: "127.0.0.1", ShutdownGrace: time.Minute, RetryInterval: time.Hour, ResyncInterval: time.Hour,
		Discovery: func(string, string) Discovery { return staticDiscovery{primary: primary} },
		Metrics:   metrics, Log: slog.New(slog.DiscardHandler),
	}
	m := NewManager(cfg)
	if tune != nil {
		tune(&cfg, m)
		m.cfg = cfg
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = m.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return reg, metrics, events
}

// TestManagerKeepsTheSeriesOfTheRouterThatReplacedAnother: when a moved
// router's last connection ends, the cluster's series stay, since the
// router on the new ports shares them: its record is still shown, and its
// connections are counted from where they were.
func TestManagerKeepsTheSeriesOfTheRouterThatReplacedAnother(t *testing.T) {
	a := startServer(t, "a")
	clusters := newFakeClusters()
	drained := make(chan string, 1)
	reg, metrics, _ := runManager(t, clusters, a.addr(), func(_ *ManagerConfig, m *Manager) {
		m.afterDrained = func(key string) { drained <- key }
	})
	p1, p2 := int32(testutil.FreePort(t)), int32(testutil.FreePort(t))
	addr := func(p int32) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	greeted := func(port int32) net.Conn {
		c, err := net.Dial("tcp", addr(port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if greeting, _ := bufio.NewReader(c).ReadString('\n'); greeting != "a\n" {
			t.Fatalf("a connection to %d reached %q", port, greeting)
		}
		return c
	}
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p1})
	waitLanding(t, addr(p1), "a")
	old := greeted(p1)
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p2})
	waitLanding(t, addr(p2), "a")
	current := greeted(p2)
	old.Close() // the old router's last connection: it has drained
	if key := <-drained; key != "shop/one" {
		t.Fatalf("drained %q", key)
	}
	if n, err := promtest.GatherAndCount(reg, "mysos_router_epoch", "mysos_router_primary_known"); err != nil || n != 2 {
		t.Fatalf("the running router's record series: %d (%v); want both kept", n, err)
	}
	current.Close()
	active := metrics.activeConns.WithLabelValues(with("shop/one", string(ReadWrite))...)
	testutil.WaitFor(t, 10*time.Second, "no active read-write connection counted", func() bool {
		return promtest.ToFloat64(active) == 0
	})
}

// TestManagerStopsTheRouterOfAClusterDeletedUnseen: a deletion the watch
// missed (it broke and listed again) is found by the periodic resync.
func TestManagerStopsTheRouterOfAClusterDeletedUnseen(t *testing.T) {
	a := startServer(t, "a")
	clusters := newFakeClusters()
	runManager(t, clusters, a.addr(), func(cfg *ManagerConfig, _ *Manager) { cfg.ResyncInterval = 10 * time.Millisecond })
	p := int32(testutil.FreePort(t))
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p})
	waitLanding(t, addr, "a")
	clusters.removeUnseen("shop/one")
	testutil.WaitFor(t, 10*time.Second, "the deleted cluster's port to close", func() bool { return landing(t, addr) == "" })
}

// TestManagerOpensOnlyPortsInItsRange: a port outside the operator's
// range (stored before the range was narrowed) is not opened, and the
// warning says why.
func TestManagerOpensOnlyPortsInItsRange(t *testing.T) {
	a := startServer(t, "a")
	clusters := newFakeClusters()
	p := int32(testutil.FreePort(t))
	_, _, events := runManager(t, clusters, a.addr(), func(cfg *ManagerConfig, _ *Manager) { cfg.Ports = spec.PortRange{Min: p + 1, Max: p + 1} })
	clusters.put("shop/one", "uid-1", &spec.RouterSpec{ReadWritePort: p})
	testutil.WaitFor(t, 10*time.Second, "a warning", func() bool { return len(events.withReason("RouterPortUnavailable")) > 0 })
	if ev := events.withReason("RouterPortUnavailable")[0]; !strings.Contains(ev.Message, "outside this scheduler's --router-ports") {
		t.Fatalf("warning %q does not name the range", ev.Message)
	}
	if got := landing(t, fmt.Sprintf("127.0.0.1:%d", p)); got != "" {
		t.Fatalf("a port outside the range routes (to %q)", got)
	}
}
