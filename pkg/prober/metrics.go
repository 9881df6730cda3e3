package prober

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of probes in prober_probe_total, as the kubelet's.
const (
	resultSuccess = "successful"
	resultFailure = "failed"
	resultUnknown = "unknown"
)

// metrics counts probe results; nil counts nothing.
type metrics struct {
	total *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Subsystem: "prober",
		Name:      "probe_total",
		Help:      "Cumulative number of a liveness, readiness or startup probe for a container by result.",
	}, []string{"probe_type", "result", "container", "pod", "namespace"})}
}

func (m *metrics) observe(probeType, result, container, pod, namespace string) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(probeType, result, container, pod, namespace).Inc()
}

// forget drops the series of a pod that is gone.
func (m *metrics) forget(pod, namespace string) {
	if m == nil {
		return
	}
	m.total.DeletePartialMatch(prometheus.Labels{"pod": pod, "namespace": namespace})
}
