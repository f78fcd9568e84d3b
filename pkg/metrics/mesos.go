package metrics

import "github.com/prometheus/client_golang/prometheus"

// Mesos is what the framework sees of Mesos: its subscription, offers,
// launches, kills and how tasks end.
type Mesos struct {
	subscribed prometheus.Gauge
	offers     *prometheus.CounterVec
	launched   prometheus.Counter
	kills      prometheus.Counter
	ended      *prometheus.CounterVec
}

// Offer results, the values of the result label.
const (
	OfferUsed     = "used"
	OfferDeclined = "declined"
)

func newMesos(reg prometheus.Registerer) *Mesos {
	m := &Mesos{
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mysos_mesos_subscribed", Help: "1 while the framework is subscribed to a Mesos master.",
		}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_mesos_offers_total", Help: "Offers received, by what became of them (used, declined).",
		}, []string{"result"}),
		launched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mysos_mesos_tasks_launched_total", Help: "Tasks launched (instances, backups, archivers).",
		}),
		kills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mysos_mesos_kills_total", Help: "KILL calls sent.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mysos_mesos_tasks_ended_total", Help: "Terminal task status updates, by state and reason (Mesos' enums).",
		}, []string{"state", "reason"}),
	}
	reg.MustRegister(m.subscribed, m.offers, m.launched, m.kills, m.ended)
	return m
}

// Subscribed records the subscription's state.
func (m *Mesos) Subscribed(on bool) {
	if m != nil {
		m.subscribed.Set(bool01(on))
	}
}

// Offers counts offers by result.
func (m *Mesos) Offers(result string, n int) {
	if m != nil && n > 0 {
		m.offers.WithLabelValues(result).Add(float64(n))
	}
}

// Launched counts launched tasks.
func (m *Mesos) Launched(n int) {
	if m != nil && n > 0 {
		m.launched.Add(float64(n))
	}
}

// Killed counts a KILL call.
func (m *Mesos) Killed() {
	if m != nil {
		m.kills.Inc()
	}
}

// Ended counts a terminal status update.
func (m *Mesos) Ended(state, reason string) {
	if m != nil {
		m.ended.WithLabelValues(state, reason).Inc()
	}
}
