package queuemetrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/util/workqueue"
)

func TestProviderCountsAQueue(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewProvider(reg)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "test", MetricsProvider: p})
	defer q.ShutDown()

	q.Add("a")
	q.Add("b")
	if got := testutil.ToFloat64(p.depth.WithLabelValues("test")); got != 2 {
		t.Errorf("workqueue_depth = %v, want 2", got)
	}
	for range 2 {
		item, _ := q.Get()
		q.Done(item)
	}
	q.AddRateLimited("a")
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"workqueue_depth", p.depth.WithLabelValues("test"), 0},
		{"workqueue_adds_total", p.adds.WithLabelValues("test"), 2},
		{"workqueue_retries_total", p.retries.WithLabelValues("test"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{"workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1", name, n, err)
		}
	}
}
