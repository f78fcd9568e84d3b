package framework

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/metrics"
)

// memIDs is an in-memory IDStore.
type memIDs struct {
	mu sync.Mutex
	id string
}

func (m *memIDs) FrameworkID(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id, nil
}

func (m *memIDs) SetFrameworkID(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id = id
	return nil
}

func (m *memIDs) get() string {
	id, _ := m.FrameworkID(context.Background())
	return id
}

func startCluster(t *testing.T) *devcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devcluster.Start(ctx, devcluster.Config{
		Listen: "127.0.0.1:0", Agents: 1, WorkDir: t.TempDir(), Timeouts: devcluster.FastTimeouts(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// running is a framework whose Run goroutine the test can stop.
type running struct {
	fw   *Framework
	stop func()
}

func run(t *testing.T, c *devcluster.Cluster, ids IDStore, failover time.Duration) *running {
	t.Helper()
	fw, err := New(Config{
		Masters: []string{c.MasterURL()}, Role: "mysos", FailoverTimeout: failover,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CallTimeout: 5 * time.Second,
	}, ids, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return runFramework(t, fw)
}

// runFramework runs fw until the test ends or stop is called.
func runFramework(t *testing.T, fw *Framework) *running {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fw.Run(ctx); close(done) }()
	var once sync.Once
	r := &running{fw: fw, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(r.stop)
	return r
}

func waitSubscribed(t *testing.T, fw *Framework) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "the framework to subscribe", func() bool {
		ok, _ := fw.Subscribed()
		return ok
	})
}

// masterFrameworks returns the ids of the frameworks the master knows, and
// which of them are connected.
func masterFrameworks(t *testing.T, c *devcluster.Cluster) (all, active map[string]bool) {
	t.Helper()
	all, active = map[string]bool{}, map[string]bool{}
	for _, f := range c.Master().Frameworks() {
		all[f.ID] = true
		active[f.ID] = f.Connected
	}
	return all, active
}

func TestSubscribePersistsAndResumesTheFrameworkID(t *testing.T) {
	c := startCluster(t)
	ids := &memIDs{}
	first := run(t, c, ids, time.Hour)
	waitSubscribed(t, first.fw)
	id := ids.get()
	if id == "" || id != first.fw.ID() {
		t.Fatalf("framework id %q not persisted (store has %q)", first.fw.ID(), id)
	}
	first.stop()
	if ok, reason := first.fw.Subscribed(); ok || reason == "" {
		t.Fatalf("a stopped framework reports subscribed=%v reason=%q", ok, reason)
	}

	second := run(t, c, ids, time.Hour)
	waitSubscribed(t, second.fw)
	if second.fw.ID() != id {
		t.Fatalf("restarted scheduler subscribed as %s, want the stored %s", second.fw.ID(), id)
	}
	all, active := masterFrameworks(t, c)
	if len(all) != 1 || !active[id] {
		t.Fatalf("master knows frameworks %v (active %v); want exactly %s, connected", all, active, id)
	}
}

func TestResubscribesAfterAMasterRestart(t *testing.T) {
	c := startCluster(t)
	ids := &memIDs{}
	r := run(t, c, ids, time.Hour)
	waitSubscribed(t, r.fw)
	id := r.fw.ID()
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "re-subscription to the new master", func() bool {
		_, active := masterFrameworks(t, c)
		return active[id]
	})
	if r.fw.ID() != id {
		t.Fatalf("framework id changed from %s to %s across a master restart", id, r.fw.ID())
	}
}

// TestStartsAnewWhenMesosRemovedTheFramework: after the failover timeout
// Mesos removes the framework and refuses its id; the stored id is
// forgotten and a new framework subscribes.
func TestStartsAnewWhenMesosRemovedTheFramework(t *testing.T) {
	c := startCluster(t)
	ids := &memIDs{}
	first := run(t, c, ids, 200*time.Millisecond)
	waitSubscribed(t, first.fw)
	oldID := ids.get()
	first.stop()
	testutil.WaitFor(t, 20*time.Second, "Mesos to remove the framework", func() bool {
		all, _ := masterFrameworks(t, c)
		return !all[oldID]
	})
	second := run(t, c, ids, time.Hour)
	testutil.WaitFor(t, 20*time.Second, "a new framework id", func() bool {
		ok, _ := second.fw.Subscribed()
		return ok && second.fw.ID() != oldID
	})
	if got := ids.get(); got != second.fw.ID() {
		t.Fatalf("store holds %q, want the new id %s", got, second.fw.ID())
	}
}

func TestNoMasterIsAClearError(t *testing.T) {
	if _, err := New(Config{}, &memIDs{}, nil); err == nil {
		t.Fatal("a framework without masters was accepted")
	}
	if _, err := New(Config{Masters: []string{"http://x"}, Codec: "xml"}, &memIDs{}, nil); err == nil {
		t.Fatal("an unknown codec was accepted")
	}
}

func TestReportsWhyItIsNotSubscribed(t *testing.T) {
	port := testutil.FreePort(t) // nothing listens there
	fw, err := New(Config{Masters: []string{"http://127.0.0.1:" + itoa(port)}, Role: "mysos",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, CallTimeout: time.Second}, &memIDs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fw.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 10*time.Second, "a failed subscription attempt", func() bool {
		_, reason := fw.Subscribed()
		return reason != "not subscribed yet"
	})
	if ok, reason := fw.Subscribed(); ok || reason == "" {
		t.Fatalf("subscribed=%v reason=%q; want false with the connection error", ok, reason)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestMetricsCountTheSubscriptionAndOffers: the subscription shows in
// mysos_mesos_subscribed, and offers nobody uses are counted declined.
func TestMetricsCountTheSubscriptionAndOffers(t *testing.T) {
	c := startCluster(t)
	reg := metrics.New()
	fw, err := New(Config{
		Masters: []string{c.MasterURL()}, Role: "mysos", FailoverTimeout: time.Hour, Metrics: reg.Mesos,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CallTimeout: 5 * time.Second,
	}, &memIDs{}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	r := runFramework(t, fw)
	waitSubscribed(t, fw)
	scrape := func() string {
		rec := httptest.NewRecorder()
		reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if m := scrape(); !strings.Contains(m, "mysos_mesos_subscribed 1") {
		t.Fatalf("a subscribed framework shows as not subscribed:\n%s", m)
	}
	// Revive asks for offers; nobody uses them.
	if err := fw.Revive(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "an offer counted declined", func() bool {
		return strings.Contains(scrape(), `mysos_mesos_offers_total{result="declined"}`)
	})
	r.stop()
	if m := scrape(); !strings.Contains(m, "mysos_mesos_subscribed 0") {
		t.Fatalf("a stopped framework shows as subscribed:\n%s", m)
	}
}
