package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// Clusters is what a Manager reads of the store: which clusters changed,
// each one's spec (store.ErrNotFound once it is gone), and all of them.
type Clusters interface {
	WatchKeys(ctx context.Context) <-chan string
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
	List(ctx context.Context, ns string) ([]*spec.MySQLCluster, int64, error)
}

// EventRecorder keeps the events a Manager reports on a cluster.
type EventRecorder interface {
	RecordEvent(ctx context.Context, ev spec.Event) error
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Clusters Clusters
	// Discovery watches one cluster's record.
	Discovery func(ns, name string) Discovery
	Events    EventRecorder // optional
	// Host is the address the routers' ports are opened on, e.g. 0.0.0.0.
	Host          string
	MaxReplicaLag time.Duration
	// ShutdownGrace is how long connections may go on once their router
	// stops (its ports changed, its cluster went, the scheduler stops).
	ShutdownGrace time.Duration
	// Ports are the ports routers may open (the scheduler's
	// --router-ports); the zero range admits every port validation does.
	Ports spec.PortRange
	// RetryInterval is how often ports that could not be opened are tried
	// again (default 10 s).
	RetryInterval time.Duration
	// ResyncInterval is how often every cluster is compared with what
	// runs, whatever the watch said (default 1 min): a re-list after a
	// broken watch names only the clusters that exist, not those deleted
	// meanwhile.
	ResyncInterval time.Duration
	Metrics        *Metrics
	Log            *slog.Logger
}

// Manager runs a Router for every cluster whose spec asks for one
// (spec.router), on the ports it names: the scheduler-embedded mode. It
// follows the specs level-triggered: every change of a cluster makes it
// compare what runs with what the spec says, and start, move or stop that
// cluster's router.
type Manager struct {
	cfg     ManagerConfig
	running map[string]*managed // by "namespace/name"
	failed  map[string]string   // clusters to retry, with the last error reported
	// drained receives the key of a stopped router once its connections
	// have ended; quit ends those hand-overs when Run returns.
	drained chan string
	quit    chan struct{}
	// afterDrained, in tests, learns that Run handled a drained router.
	afterDrained func(key string)
}

// managed is one cluster's router as the Manager runs it.
type managed struct {
	uid       string
	ports     spec.RouterSpec
	listeners []net.Listener
	stop      context.CancelFunc
	done      chan struct{}
}

// NewManager returns a Manager; Run starts it.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 10 * time.Second
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, running: map[string]*managed{}, failed: map[string]string{},
		drained: make(chan string), quit: make(chan struct{})}
}

// Run manages routers until ctx ends, then stops them all, giving their
// connections the shutdown grace.
func (m *Manager) Run(ctx context.Context) error {
	keys := m.cfg.Clusters.WatchKeys(ctx)
	retry := time.NewTicker(m.cfg.RetryInterval)
	defer retry.Stop()
	resync := time.NewTicker(m.cfg.ResyncInterval)
	defer resync.Stop()
	defer close(m.quit) // after stopAll: its routers' hand-overs end here
	defer m.stopAll()
	for {
		select {
		case key, ok := <-keys:
			if !ok {
				return nil
			}
			m.sync(ctx, key)
		case <-retry.C:
			for _, key := range slices.Sorted(maps.Keys(m.failed)) {
				m.sync(ctx, key)
			}
		case <-resync.C:
			m.resync(ctx)
		case key := <-m.drained:
			// The series are the cluster's, shared by a router that
			// replaced the drained one: keep them while one runs.
			if m.running[key] == nil {
				m.cfg.Metrics.forget(key)
			}
			if m.afterDrained != nil {
				m.afterDrained(key)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// sync brings one cluster's router in line with its stored spec.
func (m *Manager) sync(ctx context.Context, key string) {
	ns, name, _ := strings.Cut(key, "/")
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := m.cfg.Clusters.Get(gctx, ns, name)
	cancel()
	switch {
	case errors.Is(err, store.ErrNotFound):
		m.apply(ctx, key, nil)
	case err != nil:
		m.cfg.Log.Warn("cannot read a cluster's router ports; trying again", "cluster", key, "err", err)
		if _, retrying := m.failed[key]; !retrying {
			m.failed[key] = ""
		}
	default:
		m.apply(ctx, key, c)
	}
}

// resync compares every cluster with what runs, from one list.
func (m *Manager) resync(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	all, _, err := m.cfg.Clusters.List(lctx, "")
	cancel()
	if err != nil {
		m.cfg.Log.Warn("cannot list clusters to compare their routers; trying again later", "err", err)
		return
	}
	stored := map[string]*spec.MySQLCluster{}
	for _, c := range all {
		stored[c.Key()] = c
	}
	for _, key := range slices.Sorted(maps.Keys(m.running)) {
		if stored[key] == nil {
			m.apply(ctx, key, nil)
		}
	}
	for _, c := range all {
		if c.Spec.Router != nil || m.running[c.Key()] != nil {
			m.apply(ctx, c.Key(), c)
		}
	}
}

// apply starts, moves or stops key's router to match c (nil: gone).
func (m *Manager) apply(ctx context.Context, key string, c *spec.MySQLCluster) {
	cur := m.running[key]
	switch {
	case c == nil:
		m.stop(key, "the cluster is gone")
		delete(m.failed, key)
		return
	case c.Spec.Router == nil:
		m.stop(key, "spec.router was removed")
		delete(m.failed, key)
		return
	case cur != nil && cur.uid == c.Metadata.UID && cur.ports == *c.Spec.Router:
		return
	case cur != nil:
		m.stop(key, "spec.router changed")
	}
	if err := m.start(ctx, c); err != nil {
		m.reportFailure(ctx, c, err)
		return
	}
	delete(m.failed, key)
}

// start opens a cluster's ports and runs its router on them.
func (m *Manager) start(ctx context.Context, c *spec.MySQLCluster) error {
	key := c.Key()
	r := &managed{uid: c.Metadata.UID, ports: *c.Spec.Router, done: make(chan struct{})}
	byPort := map[int32]net.Listener{}
	for _, p := range c.Spec.Router.Ports() {
		if !m.cfg.Ports.Admits(p.Port) {
			closeListeners(r.listeners)
			return fmt.Errorf("%s %d is outside this scheduler's --router-ports %s", p.Field, p.Port, m.cfg.Ports)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(m.cfg.Host, strconv.Itoa(int(p.Port))))
		if err != nil {
			closeListeners(r.listeners)
			return fmt.Errorf("%s %d: %w", p.Field, p.Port, err)
		}
		r.listeners = append(r.listeners, ln)
		byPort[p.Port] = ln
	}
	rw, ro := byPort[r.ports.ReadWritePort], byPort[r.ports.ReadOnlyPort]
	router := New(Config{Cluster: key, Discovery: m.cfg.Discovery(c.Metadata.Namespace, c.Metadata.Name),
		MaxReplicaLag: m.cfg.MaxReplicaLag, Metrics: m.cfg.Metrics, Log: m.cfg.Log})
	rctx, stop := context.WithCancel(ctx)
	r.stop = stop
	go func() {
		defer close(r.done)
		_ = router.Run(rctx, rw, ro, m.cfg.ShutdownGrace)
	}()
	m.running[key] = r
	msg := "routing " + describePorts(rw, ro) + " on " + hostname()
	m.cfg.Log.Info("router started", "cluster", key, "rw", addrOf(rw), "ro", addrOf(ro))
	m.record(ctx, c, "Normal", "RouterListening", msg)
	return nil
}

func describePorts(rw, ro net.Listener) string {
	var parts []string
	if rw != nil {
		parts = append(parts, "read-write "+rw.Addr().String())
	}
	if ro != nil {
		parts = append(parts, "read-only "+ro.Addr().String())
	}
	return strings.Join(parts, ", ")
}

// reportFailure logs a failure to open a cluster's ports and, once per
// distinct error, records it as a warning event; the cluster is tried
// again every RetryInterval.
func (m *Manager) reportFailure(ctx context.Context, c *spec.MySQLCluster, err error) {
	key := c.Key()
	msg := fmt.Sprintf("cannot route on %s: %v; trying again every %s", hostname(), err, m.cfg.RetryInterval)
	last, seen := m.failed[key]
	m.failed[key] = err.Error()
	if seen && last == err.Error() {
		return
	}
	m.cfg.Log.Warn("router cannot open its ports", "cluster", key, "err", err)
	m.record(ctx, c, "Warning", "RouterPortUnavailable", msg)
}

func (m *Manager) record(ctx context.Context, c *spec.MySQLCluster, typ, reason, msg string) {
	if m.cfg.Events == nil {
		return
	}
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := m.cfg.Events.RecordEvent(ectx, spec.Event{Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name,
		Type: typ, Reason: reason, Message: msg})
	if err != nil {
		m.cfg.Log.Warn("cannot record a router event", "cluster", c.Key(), "reason", reason, "err", err)
	}
}

// stop closes a cluster's ports at once, so that another router may open
// them, and lets its connections go on for the grace in the background.
func (m *Manager) stop(key, why string) {
	r := m.running[key]
	if r == nil {
		return
	}
	delete(m.running, key)
	closeListeners(r.listeners)
	r.stop()
	m.cfg.Log.Info("router stopped", "cluster", key, "why", why)
	go func() {
		<-r.done
		select {
		case m.drained <- key:
		case <-m.quit:
		}
	}()
}

// stopAll stops every router and waits for their connections to end.
func (m *Manager) stopAll() {
	var done []chan struct{}
	for key, r := range m.running {
		done = append(done, r.done)
		m.stop(key, "shutting down")
	}
	for _, d := range done {
		<-d
	}
}

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "this host"
	}
	return h
}
