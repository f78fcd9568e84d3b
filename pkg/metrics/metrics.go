// Package metrics holds Mysos' Prometheus metrics: one registry per
// scheduler process, served at /metrics, with the Go and process
// collectors. Metric names follow Prometheus' conventions (mysos_ prefix,
// units in the name); labels are bounded (namespace and cluster, never an
// id or a message).
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is a scheduler's metrics.
type Registry struct {
	reg        *prometheus.Registry
	Backups    *Backups
	Clusters   *Clusters
	Operations *Operations
	Reconciles *Reconciles
	Mesos      *Mesos
	Etcd       *Etcd
	Servers    *Servers
	queueLen   atomic.Pointer[func() int]
}

// New returns a registry with the Go and process collectors and Mysos'
// own metrics.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{reg: reg, Backups: newBackups(reg), Clusters: newClusters(reg),
		Operations: newOperations(reg), Reconciles: newReconciles(reg), Mesos: newMesos(reg), Etcd: newEtcd(reg), Servers: newServers(reg)}
	r.registerQueueDepth()
	return r
}

// Registerer is where other components (the embedded routers) add their
// series, served with the scheduler's.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Handler serves the registry in Prometheus' exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Backups are the backup metrics of every cluster.
type Backups struct {
	finished    *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	lastSeconds *prometheus.GaugeVec
	lastBytes   *prometheus.GaugeVec
}

// Backup results, the values of the result label.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
)

func newBackups(reg prometheus.Registerer) *Backups {
	cluster := []string{"namespace", "cluster"}
	b := &Backups{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_backups_total", Help: "Full backups finished, by result (succeeded or failed).",
		}, append(cluster, "result")),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_backup_last_success_timestamp_seconds", Help: "When the last successful full backup finished (Unix time).",
		}, cluster),
		lastSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_backup_last_duration_seconds", Help: "How long the last successful full backup took.",
		}, cluster),
		lastBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_backup_last_size_bytes", Help: "The stored (compressed) size of the last successful full backup.",
		}, cluster),
	}
	reg.MustRegister(b.finished, b.lastSuccess, b.lastSeconds, b.lastBytes)
	return b
}

// Finished counts a backup that ended with result.
func (b *Backups) Finished(ns, cluster, result string) {
	if b != nil {
		b.finished.WithLabelValues(ns, cluster, result).Inc()
	}
}

// Last sets the last successful backup's figures; the reconciler sets them
// on every pass from the stored jobs, so they survive a scheduler restart.
func (b *Backups) Last(ns, cluster string, finished time.Time, took time.Duration, size int64) {
	if b == nil {
		return
	}
	b.lastSuccess.WithLabelValues(ns, cluster).Set(float64(finished.UnixNano()) / 1e9)
	b.lastSeconds.WithLabelValues(ns, cluster).Set(took.Seconds())
	b.lastBytes.WithLabelValues(ns, cluster).Set(float64(size))
}

// Forget drops a deleted cluster's series.
func (b *Backups) Forget(ns, cluster string) {
	if b == nil {
		return
	}
	labels := prometheus.Labels{"namespace": ns, "cluster": cluster}
	b.finished.DeletePartialMatch(labels)
	b.lastSuccess.Delete(labels)
	b.lastSeconds.Delete(labels)
	b.lastBytes.Delete(labels)
}
