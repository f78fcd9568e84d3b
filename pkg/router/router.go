// Package router forwards MySQL clients' TCP connections to where a
// cluster's discovery record (<prefix>/discovery/<ns>/<name>, written by the
// scheduler) says: the read-write port to the primary, the read-only port
// to a replica within the lag bound (the primary when none is). It copies
// bytes and never parses the protocol, so any client works.
//
// It carries Mysos' failover guarantees to the client side. Records are
// ordered by epoch and a stale one never wins. A record naming no primary
// (the scheduler publishes one while it replaces the primary) refuses new
// read-write connections and closes the open ones; a record naming another
// primary closes every read-write connection to the old one before any new
// connection goes to the new one, so no client keeps writing to a fenced
// server. Read-only connections to a server that left the read-only set are
// closed too.
package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Record is what the router routes by: the cluster's discovery record.
type Record struct {
	UID      string
	Primary  string // host:port; empty while no server may take writes
	Replicas []string
	Epoch    int64
	// ReplicaLag is each replica's Seconds_Behind_Master as the scheduler
	// last saw it; a replica without an entry has an unknown lag.
	ReplicaLag map[string]float64
}

// Discovery delivers a cluster's record: the current one first (when there
// is one), then every change, until ctx ends.
type Discovery interface {
	Watch(ctx context.Context) <-chan Record
}

// Port is which of the two ports a connection came in on.
type Port string

// The router's two ports.
const (
	ReadWrite Port = "rw"
	ReadOnly  Port = "ro"
)

// Config configures a Router.
type Config struct {
	// Cluster names the cluster ("namespace/name") in logs and metrics.
	Cluster   string
	Discovery Discovery
	// MaxReplicaLag bounds how far behind the primary a replica the
	// read-only port uses may be; 0 means no bound. A replica whose lag is
	// unknown is used only without a bound.
	MaxReplicaLag time.Duration
	// DialTimeout bounds connecting to a server (default 5 s).
	DialTimeout time.Duration
	Metrics     *Metrics
	Log         *slog.Logger
}

// Router routes one cluster's two ports.
type Router struct {
	cfg  Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	rec     Record
	have    bool
	conns   map[*session]struct{}
	next    atomic.Uint64  // round robin over replicas
	serving sync.WaitGroup // connections accepted and not yet ended
}

// New returns a router; Run starts it.
func New(cfg Config) *Router {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &Router{cfg: cfg, dial: d.DialContext, conns: map[*session]struct{}{}}
}

// session is one client connection and the server connection it was given.
type session struct {
	port    Port
	backend string
	client  net.Conn
	server  net.Conn
	once    sync.Once
}

func (s *session) close() {
	s.once.Do(func() {
		s.client.Close()
		if s.server != nil {
			s.server.Close()
		}
	})
}

// Run serves rw and ro (either may be nil) until ctx ends, then stops
// accepting and gives open connections grace to finish before closing them.
func (r *Router) Run(ctx context.Context, rw, ro net.Listener, grace time.Duration) error {
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	records := r.cfg.Discovery.Watch(watchCtx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for rec := range records {
			r.apply(rec)
		}
	})
	var accepting sync.WaitGroup
	for port, ln := range map[Port]net.Listener{ReadWrite: rw, ReadOnly: ro} {
		if ln == nil {
			continue
		}
		accepting.Go(func() { r.accept(ln, port) })
	}
	<-ctx.Done()
	for _, ln := range []net.Listener{rw, ro} {
		if ln != nil {
			ln.Close()
		}
	}
	accepting.Wait()
	r.drain(grace)
	stopWatch()
	wg.Wait()
	return nil
}

// drain waits up to grace for open connections to end, then closes them.
func (r *Router) drain(grace time.Duration) {
	ended := make(chan struct{})
	go func() { r.serving.Wait(); close(ended) }()
	select {
	case <-ended:
		return
	case <-time.After(grace):
	}
	r.mu.Lock()
	open := make([]*session, 0, len(r.conns))
	for s := range r.conns {
		open = append(open, s)
	}
	r.mu.Unlock()
	for _, s := range open {
		s.close()
	}
	<-ended
}

// Current is the record the router routes by, and whether it has one.
func (r *Router) Current() (Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec, r.have
}

// apply takes a record unless it is older than the one in use, and closes
// the connections it no longer allows.
func (r *Router) apply(rec Record) {
	r.mu.Lock()
	if r.have && rec.Epoch < r.rec.Epoch {
		r.mu.Unlock()
		r.cfg.Log.Warn("ignored a stale discovery record", "cluster", r.cfg.Cluster, "epoch", rec.Epoch, "current", r.rec.Epoch)
		r.cfg.Metrics.staleRecord(r.cfg.Cluster)
		return
	}
	old, had := r.rec, r.have
	r.rec, r.have = rec, true
	var doomed []*session
	for s := range r.conns {
		if !r.allowedLocked(s.port, s.backend) {
			doomed = append(doomed, s)
		}
	}
	r.mu.Unlock()
	changed := !had || old.Primary != rec.Primary || !slices.Equal(old.Replicas, rec.Replicas)
	r.cfg.Metrics.record(r.cfg.Cluster, rec, changed)
	if changed {
		r.cfg.Log.Info("routing", "cluster", r.cfg.Cluster, "epoch", rec.Epoch, "primary", rec.Primary, "replicas", rec.Replicas)
	}
	// Close outside the lock; a session closed here ends its copy loops.
	for _, s := range doomed {
		r.cfg.Metrics.closedByChange(r.cfg.Cluster, s.port)
		r.cfg.Log.Info("closing a connection the new routing does not allow", "cluster", r.cfg.Cluster,
			"port", string(s.port), "server", s.backend, "epoch", rec.Epoch)
		s.close()
	}
}

// allowedLocked reports whether a connection on port may stay with backend
// under the current record.
func (r *Router) allowedLocked(port Port, backend string) bool {
	if port == ReadWrite {
		return r.rec.Primary != "" && backend == r.rec.Primary
	}
	return slices.Contains(r.readOnlySetLocked(), backend)
}

// readOnlySetLocked is where read-only connections may go: the replicas
// within the lag bound, else the primary.
func (r *Router) readOnlySetLocked() []string {
	var out []string
	for _, rep := range r.rec.Replicas {
		if r.withinLag(rep) {
			out = append(out, rep)
		}
	}
	if len(out) == 0 && r.rec.Primary != "" {
		out = append(out, r.rec.Primary)
	}
	return out
}

func (r *Router) withinLag(replica string) bool {
	if r.cfg.MaxReplicaLag <= 0 {
		return true
	}
	lag, known := r.rec.ReplicaLag[replica]
	return known && time.Duration(lag*float64(time.Second)) <= r.cfg.MaxReplicaLag
}

// pick chooses the server for a new connection on port; "" when none may
// take it.
func (r *Router) pick(port Port) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if port == ReadWrite {
		return r.rec.Primary
	}
	set := r.readOnlySetLocked()
	if len(set) == 0 {
		return ""
	}
	return set[r.next.Add(1)%uint64(len(set))]
}

func (r *Router) accept(ln net.Listener, port Port) {
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			r.cfg.Log.Warn("accept failed", "cluster", r.cfg.Cluster, "port", string(port), "err", err)
			<-time.After(tempDelay)
			continue
		}
		tempDelay = 0
		// Counted here, before the accept loop can end, so that drain's
		// Wait never races an Add.
		r.serving.Add(1)
		go func() {
			defer r.serving.Done()
			r.serve(c, port)
		}()
	}
}

// serve connects a client to its server and copies bytes both ways.
func (r *Router) serve(client net.Conn, port Port) {
	backend := r.pick(port)
	if backend == "" {
		r.cfg.Metrics.connection(r.cfg.Cluster, port, resultRefused)
		client.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DialTimeout)
	server, err := r.dial(ctx, "tcp", backend)
	cancel()
	if err != nil {
		r.cfg.Metrics.connection(r.cfg.Cluster, port, resultFailed)
		r.cfg.Log.Warn("cannot reach the server", "cluster", r.cfg.Cluster, "port", string(port), "server", backend, "err", err)
		client.Close()
		return
	}
	s := &session{port: port, backend: backend, client: client, server: server}
	// The record may have changed while dialling: register and check under
	// one lock, so a change either sees this session or this check sees it.
	r.mu.Lock()
	allowed := r.allowedLocked(port, backend)
	if allowed {
		r.conns[s] = struct{}{}
	}
	r.mu.Unlock()
	if !allowed {
		r.cfg.Metrics.connection(r.cfg.Cluster, port, resultRefused)
		s.close()
		return
	}
	r.cfg.Metrics.connection(r.cfg.Cluster, port, resultForwarded)
	r.cfg.Metrics.active(r.cfg.Cluster, port, 1)
	defer func() {
		r.mu.Lock()
		delete(r.conns, s)
		r.mu.Unlock()
		r.cfg.Metrics.active(r.cfg.Cluster, port, -1)
	}()
	done := make(chan struct{}, 2)
	toServer := r.cfg.Metrics.byteCounter(r.cfg.Cluster, port, directionIn)
	toClient := r.cfg.Metrics.byteCounter(r.cfg.Cluster, port, directionOut)
	go func() { r.copy(s, server, client, toServer); done <- struct{}{} }()
	go func() { r.copy(s, client, server, toClient); done <- struct{}{} }()
	<-done
	s.close()
	<-done
}

// copy moves bytes from src to dst until either ends, counting them.
func (r *Router) copy(s *session, dst, src net.Conn, counted prometheus.Counter) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if counted != nil {
				counted.Add(float64(n))
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.cfg.Log.Debug("connection ended", "cluster", r.cfg.Cluster, "port", string(s.port), "server", s.backend, "err", err)
			}
			return
		}
	}
}
