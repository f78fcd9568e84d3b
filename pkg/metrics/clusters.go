package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clusters are what the reconciler last saw of each cluster and instance.
type Clusters struct {
	phase    *prometheus.GaugeVec
	ready    *prometheus.GaugeVec
	up       *prometheus.GaugeVec
	readOnly *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	gtidLag  *prometheus.GaugeVec
	threads  *prometheus.GaugeVec
	role     *prometheus.GaugeVec
	states   *prometheus.GaugeVec

	// written are the instance series each cluster's last observation set,
	// so the next drops exactly those it does not set again: deleting by a
	// partial match walks every series of every cluster, which made each
	// pass O(clusters) (docs/benchmarks.md).
	mu      sync.Mutex
	written map[string]map[series]bool
}

// series is one labelled gauge: its vector and label values (joined).
type series struct {
	vec    *prometheus.GaugeVec
	values string
}

// Phases a cluster can be in, so that every phase has a series (0 or 1).
var Phases = []string{"Pending", "Creating", "Running", "Degraded", "Failed", "Deleting"}

// Roles an instance can have, the values of the role label.
var Roles = []string{"primary", "replica", "errant", "none"}

func newClusters(reg prometheus.Registerer) *Clusters {
	cluster := []string{"namespace", "cluster"}
	instance := []string{"namespace", "cluster", "instance"}
	c := &Clusters{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_cluster_phase", Help: "1 for the phase a cluster is in, 0 for the others.",
		}, append(cluster, "phase")),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_cluster_ready_instances", Help: "Running instances below spec.replicas.",
		}, cluster),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_up", Help: "1 when the instance's mysqld answered the last observation.",
		}, instance),
		readOnly: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_read_only", Help: "1 when the instance's mysqld is read-only.",
		}, instance),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_replication_lag_seconds", Help: "Seconds_Behind_Master of a replica whose replication threads run.",
		}, instance),
		gtidLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_gtid_lag_transactions", Help: "Transactions the primary executed that a replica has not (GTID domain 0).",
		}, instance),
		threads: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_replication_thread_running", Help: "1 when a replica's replication thread (io or sql) runs.",
		}, append(instance, "thread")),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_cluster_instances", Help: "A cluster's instances by the state of their Mesos task (Pending before a launch).",
		}, append(cluster, "state")),
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_instance_role", Help: "1 for the role an instance has (primary, replica, errant, none), 0 for the others.",
		}, append(instance, "role")),
	}
	c.written = map[string]map[series]bool{}
	reg.MustRegister(c.phase, c.ready, c.up, c.readOnly, c.lag, c.gtidLag, c.threads, c.role, c.states)
	return c
}

// Instance is what one observation said of an instance.
type Instance struct {
	Name     string
	Up       bool
	ReadOnly bool
	Role     string
	// Lag is nil when the instance is no replica or its threads stop.
	Lag *time.Duration
	// GTIDLag is how many transactions it lacks of the primary's, nil when
	// unknown or for the primary.
	GTIDLag *uint64
	// IORunning and SQLRunning, for a replica (Replica set).
	Replica, IORunning, SQLRunning bool
	// State is its Mesos task state, or Pending.
	State string
}

// Observe records one pass's view of a cluster, replacing the instances
// seen before (an instance gone loses its series).
func (c *Clusters) Observe(ns, cluster, phase string, ready int, instances []Instance) {
	if c == nil {
		return
	}
	for _, p := range Phases {
		c.phase.WithLabelValues(ns, cluster, p).Set(bool01(p == phase))
	}
	c.ready.WithLabelValues(ns, cluster).Set(float64(ready))
	now := map[series]bool{}
	set := func(v *prometheus.GaugeVec, value float64, labels ...string) {
		v.WithLabelValues(labels...).Set(value)
		now[series{v, strings.Join(labels, "\x00")}] = true
	}
	states := map[string]int{}
	for _, in := range instances {
		states[in.State]++
	}
	for state, n := range states {
		set(c.states, float64(n), ns, cluster, state)
	}
	for _, in := range instances {
		if in.GTIDLag != nil {
			set(c.gtidLag, float64(*in.GTIDLag), ns, cluster, in.Name)
		}
		if in.Replica {
			set(c.threads, bool01(in.IORunning), ns, cluster, in.Name, "io")
			set(c.threads, bool01(in.SQLRunning), ns, cluster, in.Name, "sql")
		}
		set(c.up, bool01(in.Up), ns, cluster, in.Name)
		set(c.readOnly, bool01(in.ReadOnly), ns, cluster, in.Name)
		for _, r := range Roles {
			set(c.role, bool01(r == in.Role), ns, cluster, in.Name, r)
		}
		if in.Lag != nil {
			set(c.lag, in.Lag.Seconds(), ns, cluster, in.Name)
		}
	}
	c.replaceWritten(ns+"/"+cluster, now)
}

// replaceWritten records a cluster's series and deletes those of its
// previous observation that are gone.
func (c *Clusters) replaceWritten(key string, now map[series]bool) {
	c.mu.Lock()
	before := c.written[key]
	if now == nil {
		delete(c.written, key)
	} else {
		c.written[key] = now
	}
	c.mu.Unlock()
	for s := range before {
		if !now[s] {
			s.vec.DeleteLabelValues(strings.Split(s.values, "\x00")...)
		}
	}
}

// Forget drops a deleted cluster's series.
func (c *Clusters) Forget(ns, cluster string) {
	if c == nil {
		return
	}
	for _, p := range Phases {
		c.phase.DeleteLabelValues(ns, cluster, p)
	}
	c.ready.DeleteLabelValues(ns, cluster)
	c.replaceWritten(ns+"/"+cluster, nil)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Operations count failovers and switchovers and time them.
type Operations struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Operation results, the values of the result label.
const (
	ResultCompleted = "completed"
	ResultAborted   = "aborted"
)

func newOperations(reg prometheus.Registerer) *Operations {
	o := &Operations{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_operations_total", Help: "Failovers and switchovers ended, by kind (failover, switchover) and result (completed, aborted).",
		}, []string{"namespace", "cluster", "kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mysos_operation_duration_seconds", Help: "From the start of a failover or switchover to the new primary taking writes.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind"}),
	}
	reg.MustRegister(o.total, o.duration)
	return o
}

// Ended counts an operation that ended; a completed one is timed.
func (o *Operations) Ended(ns, cluster, kind, result string, took time.Duration) {
	if o == nil {
		return
	}
	o.total.WithLabelValues(ns, cluster, kind, result).Inc()
	if result == ResultCompleted {
		o.duration.WithLabelValues(kind).Observe(took.Seconds())
	}
}

// Forget drops a deleted cluster's series.
func (o *Operations) Forget(ns, cluster string) {
	if o != nil {
		o.total.DeletePartialMatch(prometheus.Labels{"namespace": ns, "cluster": cluster})
	}
}

// Reconciles time the reconciler's passes.
type Reconciles struct {
	duration prometheus.Histogram
	errors   prometheus.Counter
}

func newReconciles(reg prometheus.Registerer) *Reconciles {
	r := &Reconciles{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mysos_reconcile_duration_seconds", Help: "How long one reconcile pass of a cluster takes.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 20},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mysos_reconcile_errors_total", Help: "Reconcile passes that failed (and are retried with backoff).",
		}),
	}
	reg.MustRegister(r.duration, r.errors)
	return r
}

// Pass records one pass.
func (r *Reconciles) Pass(took time.Duration, err error) {
	if r == nil {
		return
	}
	r.duration.Observe(took.Seconds())
	if err != nil {
		r.errors.Inc()
	}
}

// QueueDepth makes mysos_reconcile_queue_depth read length: the queue of
// the current leadership term (each term has its own).
func (r *Registry) QueueDepth(length func() int) { r.queueLen.Store(&length) }

func (r *Registry) registerQueueDepth() {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mysos_reconcile_queue_depth", Help: "Clusters waiting for a reconcile pass.",
	}, func() float64 {
		if f := r.queueLen.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	}))
}
