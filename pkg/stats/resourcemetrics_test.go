package stats

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type summaryFunc func(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error)

func (f summaryFunc) Summary(ctx context.Context, only bool) (*statsapi.Summary, error) {
	return f(ctx, only)
}

func TestResourceMetricsCollector(t *testing.T) {
	at := metav1.NewTime(time.Unix(1700000000, 0))
	summary := &statsapi.Summary{
		Node: statsapi.NodeStats{
			CPU:    &statsapi.CPUStats{Time: at, UsageCoreNanoSeconds: ptr(uint64(12_500_000_000))},
			Memory: &statsapi.MemoryStats{Time: at, WorkingSetBytes: ptr(uint64(1024))},
		},
		Pods: []statsapi.PodStats{{
			PodRef: statsapi.PodReference{Name: "web", Namespace: "ns", UID: "u"},
			Containers: []statsapi.ContainerStats{
				{Name: "app", StartTime: metav1.NewTime(time.Unix(1600000000, 0)),
					CPU:    &statsapi.CPUStats{Time: at, UsageCoreNanoSeconds: ptr(uint64(2_000_000_000))},
					Memory: &statsapi.MemoryStats{Time: at, WorkingSetBytes: ptr(uint64(100))}},
				// No stats yet: only its start time.
				{Name: "debugger", StartTime: metav1.NewTime(time.Unix(1600000001, 0))},
			},
			CPU:    &statsapi.CPUStats{Time: at, UsageCoreNanoSeconds: ptr(uint64(2_000_000_000))},
			Memory: &statsapi.MemoryStats{Time: at, WorkingSetBytes: ptr(uint64(100))},
		}},
	}
	var asked []bool
	_, ctx := ktesting.NewTestContext(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewResourceMetricsCollector(ctx, summaryFunc(func(_ context.Context, only bool) (*statsapi.Summary, error) {
		asked = append(asked, only)
		return summary, nil
	})))
	want := `
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="ns",pod="web"} 2 1700000000000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="ns",pod="web"} 100 1700000000000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="ns",pod="web"} 1.6e+09
container_start_time_seconds{container="debugger",namespace="ns",pod="web"} 1.600000001e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 12.5 1700000000000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1024 1700000000000
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="ns",pod="web"} 2 1700000000000
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="ns",pod="web"} 100 1700000000000
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if len(asked) != 1 || !asked[0] {
		t.Errorf("summaries asked = %v, want one of CPU and memory only", asked)
	}
}

func TestResourceMetricsCollectorError(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewResourceMetricsCollector(ctx, summaryFunc(func(context.Context, bool) (*statsapi.Summary, error) {
		return nil, errors.New("runtime down")
	})))
	want := `
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "resource_scrape_error"); err != nil {
		t.Error(err)
	}
}
