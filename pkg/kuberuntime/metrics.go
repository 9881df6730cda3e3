package kuberuntime

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"k8s.io/apimachinery/pkg/types"
)

// Metrics are the sync loop's Prometheus metrics. A nil *Metrics records
// nothing, so embedders that do not export metrics pass none.
type Metrics struct {
	started    prometheus.Counter
	startErrs  *prometheus.CounterVec
	startDelay prometheus.Histogram
	ended      *prometheus.CounterVec

	mu        sync.Mutex
	firstSeen map[ephemeralKey]time.Time
}

type ephemeralKey struct {
	pod  types.UID
	name string
}

// NewMetrics creates the metrics and registers them with reg (with none
// when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		started: f.NewCounter(prometheus.CounterOpts{
			Name: "ephemeral_containers_started_total",
			Help: "Ephemeral containers started through the CRI runtime.",
		}),
		startErrs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ephemeral_container_start_errors_total",
			Help: "Failed attempts to start an ephemeral container, by Waiting reason (ErrImagePull, CreateContainerConfigError, ...).",
		}, []string{"reason"}),
		startDelay: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ephemeral_container_start_duration_seconds",
			Help:    "Time from an ephemeral container first being seen in the pod spec to it running.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		ended: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ephemeral_containers_ended_by_agent_total",
			Help: "Debug (ephemeral) containers the agent ended on its own, by reason: DebugPolicyDenied (never ran), DebugStopRequested, DeadlineExceeded, DebugSessionIdle.",
		}, []string{"reason"}),
		firstSeen: map[ephemeralKey]time.Time{},
	}
}

// ephemeralEnded counts a debug container the agent ended, and forgets
// when it was first seen: a denied one never starts.
func (m *Metrics) ephemeralEnded(pod types.UID, name, reason string) {
	if m == nil {
		return
	}
	m.ended.WithLabelValues(reason).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.firstSeen, ephemeralKey{pod, name})
}

// ephemeralPlanned notes when a start of the ephemeral container was first
// planned: the moment the agent saw it in the spec.
func (m *Metrics) ephemeralPlanned(pod types.UID, name string, now time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.firstSeen[ephemeralKey{pod, name}]; !ok {
		m.firstSeen[ephemeralKey{pod, name}] = now
	}
}

func (m *Metrics) ephemeralStarted(pod types.UID, name string, now time.Time) {
	if m == nil {
		return
	}
	m.started.Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.firstSeen[ephemeralKey{pod, name}]; ok {
		m.startDelay.Observe(now.Sub(t).Seconds())
		delete(m.firstSeen, ephemeralKey{pod, name})
	}
}

func (m *Metrics) ephemeralFailed(reason string) {
	if m == nil {
		return
	}
	m.startErrs.WithLabelValues(reason).Inc()
}

// forgetPod drops the start times of a pod that is gone.
func (m *Metrics) forgetPod(pod types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.firstSeen {
		if k.pod == pod {
			delete(m.firstSeen, k)
		}
	}
}
