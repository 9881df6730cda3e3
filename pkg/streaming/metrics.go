package streaming

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the debug sessions' Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	sessions *prometheus.CounterVec
	duration *prometheus.HistogramVec
	refusals *prometheus.CounterVec
	dropped  prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (with none
// when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		sessions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "debug_sessions_total",
			Help: "Debug sessions (exec, attach, portforward) handed to the runtime's streaming server, counted when they start.",
		}, []string{"kind"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "debug_session_duration_seconds",
			Help:    "Duration of debug sessions handed to the runtime's streaming server, observed when they end.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600},
		}, []string{"kind"}),
		refusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "debug_requests_refused_total",
			Help: "Requests to the debug routes (exec, attach, portforward) refused by authentication or authorization, by HTTP status code.",
		}, []string{"kind", "code"}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "debug_audit_refusals_dropped_total",
			Help: "Refused requests to the debug routes left out of the audit log by its rate limit.",
		}),
	}
}

func (m *Metrics) refused(kind string, code int) {
	if m != nil {
		m.refusals.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	}
}

func (m *Metrics) refusalDropped() {
	if m != nil {
		m.dropped.Inc()
	}
}

func (m *Metrics) started(kind string) {
	if m != nil {
		m.sessions.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) ended(kind string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(kind).Observe(d.Seconds())
	}
}
