package runtimeevents

import "github.com/prometheus/client_golang/prometheus"

// Source names, the "source" label of the metrics.
const (
	SourceCRI        = "cri"
	SourceContainerd = "containerd"
)

// metrics are the watcher's; nil Registerer: counted, never exported.
type metrics struct {
	events    *prometheus.CounterVec
	connects  *prometheus.CounterVec
	connected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ephemeral_agent_runtime_events_total",
			Help: "Container lifecycle events received from the container runtime, by source (cri, containerd) and topic (the CRI event type or the containerd topic).",
		}, []string{"source", "topic"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ephemeral_agent_runtime_event_stream_connects_total",
			Help: "Runtime event streams opened, by source; more than one per source means the stream broke and was reopened (a runtime restart).",
		}, []string{"source"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ephemeral_agent_runtime_event_stream_connected",
			Help: "1 while a runtime event stream is connected (the runtime is then relisted every --relist-period), 0 while none is (relisted every --relist-period-without-events).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.connects, m.connected)
	}
	return m
}
