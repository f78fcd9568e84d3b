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
