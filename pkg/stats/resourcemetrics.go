package stats

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// SummaryProvider is what the resource metrics are read from.
type SummaryProvider interface {
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error)
}

// The kubelet's /metrics/resource series, with its names, help (as
// component-base prints it, stability level first) and labels.
var (
	nodeCPUUsageDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemoryUsageDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"[STABLE] Current working set of the node in bytes", nil, nil)
	containerCPUUsageDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the container in core-seconds", []string{"container", "pod", "namespace"}, nil)
	containerMemoryUsageDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"[STABLE] Current working set of the container in bytes", []string{"container", "pod", "namespace"}, nil)
	containerStartTimeDesc = prometheus.NewDesc("container_start_time_seconds",
		"[STABLE] Start time of the container since unix epoch in seconds", []string{"container", "pod", "namespace"}, nil)
	podCPUUsageDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the pod in core-seconds", []string{"pod", "namespace"}, nil)
	podMemoryUsageDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"[STABLE] Current working set of the pod in bytes", []string{"pod", "namespace"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("scrape_error",
		"[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
	resourceScrapeErrorDesc = prometheus.NewDesc("resource_scrape_error",
		"[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// ResourceMetricsCollector is a prometheus.Collector of the kubelet's
// resource metrics, computed from a CPU-and-memory summary at each scrape.
// Register it on a registry of its own, served at /metrics/resource.
type ResourceMetricsCollector struct {
	provider SummaryProvider
	// ctx carries the logger: Collect has no context of its own.
	ctx context.Context
}

// NewResourceMetricsCollector returns a collector reading from provider.
func NewResourceMetricsCollector(ctx context.Context, provider SummaryProvider) *ResourceMetricsCollector {
	return &ResourceMetricsCollector{provider: provider, ctx: ctx}
}

// Describe implements prometheus.Collector.
func (c *ResourceMetricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeCPUUsageDesc, nodeMemoryUsageDesc, containerCPUUsageDesc, containerMemoryUsageDesc,
		containerStartTimeDesc, podCPUUsageDesc, podMemoryUsageDesc, scrapeErrorDesc, resourceScrapeErrorDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A summary that cannot be read
// yields only the scrape error series, set to 1.
func (c *ResourceMetricsCollector) Collect(ch chan<- prometheus.Metric) {
	errValue := 0.0
	defer func() {
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, errValue)
		ch <- prometheus.MustNewConstMetric(resourceScrapeErrorDesc, prometheus.GaugeValue, errValue)
	}()
	s, err := c.provider.Summary(c.ctx, true)
	if err != nil {
		errValue = 1
		klog.FromContext(c.ctx).Error(err, "Error getting summary for resourceMetric prometheus endpoint")
		return
	}
	// Each sample carries the time it was measured, as the kubelet's do.
	cpu := func(d *prometheus.Desc, st *statsapi.CPUStats, labels ...string) {
		if st == nil || st.UsageCoreNanoSeconds == nil {
			return
		}
		ch <- prometheus.NewMetricWithTimestamp(st.Time.Time,
			prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(*st.UsageCoreNanoSeconds)/float64(time.Second), labels...))
	}
	mem := func(d *prometheus.Desc, st *statsapi.MemoryStats, labels ...string) {
		if st == nil || st.WorkingSetBytes == nil {
			return
		}
		ch <- prometheus.NewMetricWithTimestamp(st.Time.Time,
			prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(*st.WorkingSetBytes), labels...))
	}
	cpu(nodeCPUUsageDesc, s.Node.CPU)
	mem(nodeMemoryUsageDesc, s.Node.Memory)
	for _, p := range s.Pods {
		for _, ct := range p.Containers {
			if ct.StartTime.Unix() > 0 {
				ch <- prometheus.MustNewConstMetric(containerStartTimeDesc, prometheus.GaugeValue,
					float64(ct.StartTime.UnixNano())/float64(time.Second), ct.Name, p.PodRef.Name, p.PodRef.Namespace)
			}
			cpu(containerCPUUsageDesc, ct.CPU, ct.Name, p.PodRef.Name, p.PodRef.Namespace)
			mem(containerMemoryUsageDesc, ct.Memory, ct.Name, p.PodRef.Name, p.PodRef.Namespace)
		}
		cpu(podCPUUsageDesc, p.CPU, p.PodRef.Name, p.PodRef.Namespace)
		mem(podMemoryUsageDesc, p.Memory, p.PodRef.Name, p.PodRef.Namespace)
	}
}
