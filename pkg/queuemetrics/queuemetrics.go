// Package queuemetrics exports client-go work queues' metrics under the
// names component-base gives them (workqueue_depth, workqueue_adds_total,
// ... by queue name), into a registry the caller gives rather than the
// process-wide legacy registry component-base registers into, so that an
// agent, or a test, has metrics of its own.
package queuemetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"k8s.io/client-go/util/workqueue"
)

// Provider gives client-go work queues their metrics, labelled with the
// queue's name; set it as a queue config's MetricsProvider. One Provider
// serves every queue of a registry: the names can be registered only once.
type Provider struct {
	depth        *prometheus.GaugeVec
	adds         *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	workDuration *prometheus.HistogramVec
	unfinished   *prometheus.GaugeVec
	longest      *prometheus.GaugeVec
	retries      *prometheus.CounterVec
}

var _ workqueue.MetricsProvider = (*Provider)(nil)

// NewProvider creates the metrics and registers them with reg (with none
// when reg is nil).
func NewProvider(reg prometheus.Registerer) *Provider {
	f := promauto.With(reg)
	name := []string{"name"}
	// component-base's buckets: 10ns to 10s.
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 10)
	return &Provider{
		depth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_depth",
			Help: "Current depth of workqueue",
		}, name),
		adds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_adds_total",
			Help: "Total number of adds handled by workqueue",
		}, name),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_queue_duration_seconds",
			Help:    "How long in seconds an item stays in workqueue before being requested.",
			Buckets: buckets,
		}, name),
		workDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_work_duration_seconds",
			Help:    "How long in seconds processing an item from workqueue takes.",
			Buckets: buckets,
		}, name),
		unfinished: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_unfinished_work_seconds",
			Help: "How many seconds of work has done that is in progress and hasn't been observed by work_duration. " +
				"Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
		}, name),
		longest: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_longest_running_processor_seconds",
			Help: "How many seconds has the longest running processor for workqueue been running.",
		}, name),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_retries_total",
			Help: "Total number of retries handled by workqueue",
		}, name),
	}
}

// NewDepthMetric is the queue's workqueue_depth.
func (p *Provider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.WithLabelValues(name)
}

// NewAddsMetric is the queue's workqueue_adds_total.
func (p *Provider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.adds.WithLabelValues(name)
}

// NewLatencyMetric is the queue's workqueue_queue_duration_seconds.
func (p *Provider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

// NewWorkDurationMetric is the queue's workqueue_work_duration_seconds.
func (p *Provider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

// NewUnfinishedWorkSecondsMetric is the queue's
// workqueue_unfinished_work_seconds.
func (p *Provider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.WithLabelValues(name)
}

// NewLongestRunningProcessorSecondsMetric is the queue's
// workqueue_longest_running_processor_seconds.
func (p *Provider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longest.WithLabelValues(name)
}

// NewRetriesMetric is the queue's workqueue_retries_total. client-go's
// rate-limiting queue counts its AddRateLimited calls in it; a caller that
// times its retries itself counts them.
func (p *Provider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retries.WithLabelValues(name)
}
