package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// serverMetric is one MySQL status variable shown as a metric.
type serverMetric struct {
	variable string
	desc     *prometheus.Desc
	kind     prometheus.ValueType
}

// Servers are each instance's own MySQL status counters, as the last
// reconcile pass read them (so no exporter is needed for the basics). It is
// a collector: Collect emits the values last observed, counters as
// counters, levels as gauges.
type Servers struct {
	metrics []serverMetric
	mu      sync.Mutex
	last    map[[3]string]map[string]float64 // namespace, cluster, instance → variable → value
}

func newServers(reg prometheus.Registerer) *Servers {
	labels := []string{"namespace", "cluster", "instance"}
	def := func(variable, name, help string, kind prometheus.ValueType) serverMetric {
		return serverMetric{variable: variable, kind: kind, desc: prometheus.NewDesc(name, help, labels, nil)}
	}
	s := &Servers{last: map[[3]string]map[string]float64{}, metrics: []serverMetric{
		def("Threads_connected", "mysos_mysql_threads_connected", "Open client connections (Threads_connected).", prometheus.GaugeValue),
		def("Threads_running", "mysos_mysql_threads_running", "Connections running a statement (Threads_running).", prometheus.GaugeValue),
		def("Questions", "mysos_mysql_questions_total", "Statements clients sent (Questions).", prometheus.CounterValue),
		def("Slow_queries", "mysos_mysql_slow_queries_total", "Statements slower than long_query_time (Slow_queries).", prometheus.CounterValue),
		def("Aborted_connects", "mysos_mysql_aborted_connects_total", "Failed connection attempts (Aborted_connects).", prometheus.CounterValue),
		def("Innodb_buffer_pool_pages_total", "mysos_mysql_innodb_buffer_pool_pages", "InnoDB buffer pool size in pages.", prometheus.GaugeValue),
		def("Innodb_buffer_pool_pages_data", "mysos_mysql_innodb_buffer_pool_pages_data", "InnoDB buffer pool pages holding data.", prometheus.GaugeValue),
		def("Innodb_buffer_pool_pages_dirty", "mysos_mysql_innodb_buffer_pool_pages_dirty", "InnoDB buffer pool pages not yet flushed.", prometheus.GaugeValue),
		def("Innodb_buffer_pool_read_requests", "mysos_mysql_innodb_buffer_pool_read_requests_total", "Logical reads from the InnoDB buffer pool.", prometheus.CounterValue),
		def("Innodb_buffer_pool_reads", "mysos_mysql_innodb_buffer_pool_reads_total", "Logical reads the buffer pool could not serve (read from disk).", prometheus.CounterValue),
	}}
	reg.MustRegister(s)
	return s
}

// Describe implements prometheus.Collector.
func (s *Servers) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range s.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (s *Servers) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, values := range s.last {
		for _, m := range s.metrics {
			if v, ok := values[m.variable]; ok {
				ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v, key[0], key[1], key[2])
			}
		}
	}
}

// Observe replaces a cluster's instances' counters with those of one pass
// (by instance name; an instance not answering is left out).
func (s *Servers) Observe(ns, cluster string, counters map[string]map[string]float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(ns, cluster)
	for instance, values := range counters {
		s.last[[3]string{ns, cluster, instance}] = values
	}
}

// Forget drops a deleted cluster's series.
func (s *Servers) Forget(ns, cluster string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(ns, cluster)
}

func (s *Servers) forgetLocked(ns, cluster string) {
	for key := range s.last {
		if key[0] == ns && key[1] == cluster {
			delete(s.last, key)
		}
	}
}

// VariableNames are the MySQL status variables Servers shows.
func (s *Servers) VariableNames() []string {
	var out []string
	for _, m := range s.metrics {
		out = append(out, m.variable)
	}
	return out
}
