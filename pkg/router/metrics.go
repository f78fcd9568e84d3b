package router

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus series; a nil *Metrics records
// nothing. Clusters are named by "namespace/name" here and labelled
// namespace and cluster, as the scheduler's own series are, so that
// dashboards can join them.
type Metrics struct {
	connections *prometheus.CounterVec
	activeConns *prometheus.GaugeVec
	bytesTotal  *prometheus.CounterVec
	changes     *prometheus.CounterVec
	closed      *prometheus.CounterVec
	stale       *prometheus.CounterVec
	epoch       *prometheus.GaugeVec
	primary     *prometheus.GaugeVec
}

type result string

const (
	resultForwarded result = "forwarded"
	resultRefused   result = "refused" // no server may take it
	resultFailed    result = "failed"  // the server could not be reached
)

type direction string

const (
	directionIn  direction = "to_server"
	directionOut direction = "to_client"
)

// NewMetrics registers the router's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_router_connections_total",
			Help: "Client connections by port (rw, ro) and result (forwarded; refused: no server may take it; failed: the server could not be reached).",
		}, []string{"namespace", "cluster", "port", "result"}),
		activeConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_router_active_connections", Help: "Client connections being forwarded now.",
		}, []string{"namespace", "cluster", "port"}),
		bytesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_router_bytes_total", Help: "Bytes forwarded, by port and direction (to_server, to_client).",
		}, []string{"namespace", "cluster", "port", "direction"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_router_routing_changes_total", Help: "Discovery records that changed the primary or the replicas.",
		}, []string{"namespace", "cluster"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_router_closed_connections_total", Help: "Connections closed because a new record no longer allowed their server.",
		}, []string{"namespace", "cluster", "port"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_router_stale_records_total", Help: "Discovery records ignored because their epoch was older than the one in use.",
		}, []string{"namespace", "cluster"}),
		epoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_router_epoch", Help: "Epoch of the discovery record in use.",
		}, []string{"namespace", "cluster"}),
		primary: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mysos_router_primary_known", Help: "1 while the record in use names a primary (read-write connections are accepted).",
		}, []string{"namespace", "cluster"}),
	}
	reg.MustRegister(m.connections, m.activeConns, m.bytesTotal, m.changes, m.closed, m.stale, m.epoch, m.primary)
	return m
}

func (m *Metrics) connection(cluster string, port Port, r result) {
	if m != nil {
		m.connections.WithLabelValues(with(cluster, string(port), string(r))...).Inc()
	}
}

func (m *Metrics) active(cluster string, port Port, delta float64) {
	if m != nil {
		m.activeConns.WithLabelValues(with(cluster, string(port))...).Add(delta)
	}
}

// byteCounter is the counter of one port and direction, looked up once per
// connection rather than per read; nil records nothing.
func (m *Metrics) byteCounter(cluster string, port Port, dir direction) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.bytesTotal.WithLabelValues(with(cluster, string(port), string(dir))...)
}

// record notes the record in use; changed says it moved the routing.
func (m *Metrics) record(cluster string, rec Record, changed bool) {
	if m == nil {
		return
	}
	if changed {
		m.changes.WithLabelValues(with(cluster)...).Inc()
	}
	m.epoch.WithLabelValues(with(cluster)...).Set(float64(rec.Epoch))
	known := 0.0
	if rec.Primary != "" {
		known = 1
	}
	m.primary.WithLabelValues(with(cluster)...).Set(known)
}

func (m *Metrics) closedByChange(cluster string, port Port) {
	if m != nil {
		m.closed.WithLabelValues(with(cluster, string(port))...).Inc()
	}
}

func (m *Metrics) staleRecord(cluster string) {
	if m != nil {
		m.stale.WithLabelValues(with(cluster)...).Inc()
	}
}

// forget drops a cluster's series once its router has stopped (its ports
// moved, or it is gone), so a scheduler's routers do not pile up series.
func (m *Metrics) forget(cluster string) {
	if m == nil {
		return
	}
	ns, name := splitKey(cluster)
	only := prometheus.Labels{"namespace": ns, "cluster": name}
	for _, vec := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.connections, m.activeConns, m.bytesTotal, m.changes, m.closed, m.stale, m.epoch, m.primary,
	} {
		vec.DeletePartialMatch(only)
	}
}

// with returns a cluster's label values followed by more.
func with(cluster string, more ...string) []string {
	ns, name := splitKey(cluster)
	return append([]string{ns, name}, more...)
}

// splitKey parses "namespace/name".
func splitKey(key string) (ns, name string) {
	ns, name, _ = strings.Cut(key, "/")
	return ns, name
}
