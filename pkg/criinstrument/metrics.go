package criinstrument

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	internalapi "k8s.io/cri-api/pkg/apis"
)

// Metrics are the runtime operation metrics every wrapped service records
// into. A nil *Metrics records nothing: its wrappers return the service
// unwrapped.
type Metrics struct {
	ops      *prometheus.CounterVec
	errs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (with none
// when reg is nil). One Metrics serves every connection of the agent: the
// names can be registered only once.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		ops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelet_runtime_operations_total",
			Help: "Cumulative number of runtime operations by operation type.",
		}, []string{"operation_type"}),
		errs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelet_runtime_operations_errors_total",
			Help: "Cumulative number of runtime operation errors by operation type.",
		}, []string{"operation_type"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kubelet_runtime_operations_duration_seconds",
			Help: "Duration in seconds of runtime operations. Broken down by operation type.",
			// The kubelet's buckets, so that the agent's and the
			// kubelet's histograms compare bucket for bucket.
			Buckets: prometheus.ExponentialBuckets(.005, 2.5, 14),
		}, []string{"operation_type"}),
	}
}

// RuntimeService returns rs with every call counted and timed.
func (m *Metrics) RuntimeService(rs internalapi.RuntimeService) internalapi.RuntimeService {
	if m == nil {
		return rs
	}
	return &runtimeService{RuntimeService: rs, m: m}
}

// ImageService returns is with every call counted and timed.
func (m *Metrics) ImageService(is internalapi.ImageManagerService) internalapi.ImageManagerService {
	if m == nil {
		return is
	}
	return &imageService{ImageManagerService: is, m: m}
}

// record counts one finished operation, as an error too when it failed.
// Every error counts, the caller's cancellation included, as the
// kubelet's.
func (m *Metrics) record(op string, start time.Time, err error) {
	m.ops.WithLabelValues(op).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errs.WithLabelValues(op).Inc()
	}
}

// call runs f as the operation op and records it.
func call[T any](m *Metrics, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	out, err := f()
	m.record(op, start, err)
	return out, err
}

// callErr runs f, which returns only an error, as the operation op and
// records it.
func callErr(m *Metrics, op string, f func() error) error {
	start := time.Now()
	err := f()
	m.record(op, start, err)
	return err
}
