package kuberuntime

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// gathered returns the value of the metric's series of the pod_workers
// queue (or its only series, for a metric without labels); -1 when the
// registry has none.
func gathered(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			mine := len(m.GetLabel()) == 0
			for _, l := range m.GetLabel() {
				mine = mine || l.GetName() == "name" && l.GetValue() == queueName
			}
			if !mine {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// TestWorkersQueueMetrics: the queue's depth follows the pods waiting for
// a sync and is back to 0 once they synced; adds and retries are counted.
func TestWorkersQueueMetrics(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	reg := prometheus.NewPedanticRegistry()
	var mu sync.Mutex
	failed := false
	syncer := syncerFunc(func(_ context.Context, uid types.UID) (SyncResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if uid == "b" && !failed {
			failed = true
			return SyncResult{}, errors.New("runtime unavailable")
		}
		return SyncResult{}, nil
	})
	clk := clocktesting.NewFakeClock(t0)
	w := newTestWorkers(t, WorkerConfig{Resync: time.Minute, Clock: clk, Registerer: reg}, syncer, criapitesting.NewFakeRuntimeService())

	w.Enqueue("a")
	w.Enqueue("b")
	w.Enqueue("a") // already waiting: not a second entry
	if got := w.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	if got := gathered(t, reg, "workqueue_depth"); got != 2 {
		t.Errorf("workqueue_depth = %v, want 2", got)
	}
	drain(ctx, t, w)
	if got := w.Len(); got != 0 {
		t.Errorf("Len() after the syncs = %d, want 0", got)
	}
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"workqueue_depth", 0},
		{"workqueue_adds_total", 2},
		{"workqueue_retries_total", 1},
		{"workqueue_queue_duration_seconds", 2},
		{"workqueue_work_duration_seconds", 2},
		{"workqueue_unfinished_work_seconds", 0},
		{"workqueue_longest_running_processor_seconds", 0},
	} {
		if got := gathered(t, reg, tc.name); got != tc.want {
			t.Errorf("%s{name=%q} = %v, want %v", tc.name, queueName, got, tc.want)
		}
	}
}

// TestWorkersTrackedPods: ephemeral_agent_tracked_pods counts the pods the
// workers keep state of, and is back to the live pods once the others are
// gone.
func TestWorkersTrackedPods(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	reg := prometheus.NewPedanticRegistry()
	var mu sync.Mutex
	gone := map[types.UID]bool{}
	syncer := syncerFunc(func(_ context.Context, uid types.UID) (SyncResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if gone[uid] {
			return SyncResult{Gone: true}, nil
		}
		return SyncResult{RequeueAfter: 10 * time.Second}, nil
	})
	rt := criapitesting.NewFakeRuntimeService()
	clk := clocktesting.NewFakeClock(t0)
	w := newTestWorkers(t, WorkerConfig{Resync: time.Minute, Clock: clk, Registerer: reg}, syncer, rt)
	if got := gathered(t, reg, "ephemeral_agent_tracked_pods"); got != 0 {
		t.Fatalf("ephemeral_agent_tracked_pods before any pod = %v, want 0", got)
	}

	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{
		criSandbox("sa", "a", runtimeapi.PodSandboxState_SANDBOX_READY),
		criSandbox("sb", "b", runtimeapi.PodSandboxState_SANDBOX_READY),
	})
	w.relist(ctx)
	// c only ever comes from an informer: it has no runtime objects, only
	// its timed sync.
	w.Enqueue("c")
	drain(ctx, t, w)
	if got := gathered(t, reg, "ephemeral_agent_tracked_pods"); got != 3 {
		t.Fatalf("ephemeral_agent_tracked_pods = %v, want 3 (a, b, c)", got)
	}

	// b and c go: from the API and the runtime.
	mu.Lock()
	gone["b"], gone["c"] = true, true
	mu.Unlock()
	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{criSandbox("sa", "a", runtimeapi.PodSandboxState_SANDBOX_READY)})
	w.Enqueue("b")
	w.Enqueue("c")
	drain(ctx, t, w)
	w.relist(ctx)
	drain(ctx, t, w)
	if got := gathered(t, reg, "ephemeral_agent_tracked_pods"); got != 1 {
		t.Errorf("ephemeral_agent_tracked_pods after b and c went = %v, want 1 (a)", got)
	}

	// a goes too: nothing is left.
	mu.Lock()
	gone["a"] = true
	mu.Unlock()
	rt.SetFakeSandboxes(nil)
	w.relist(ctx)
	drain(ctx, t, w)
	clk.Step(time.Minute)
	drain(ctx, t, w)
	if got := gathered(t, reg, "ephemeral_agent_tracked_pods"); got != 0 {
		t.Errorf("ephemeral_agent_tracked_pods after every pod went = %v, want 0", got)
	}
}

// TestWorkersWithoutRegisterer: Workers without a registerer work and
// count nothing anywhere.
func TestWorkersWithoutRegisterer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	syncer := syncerFunc(func(context.Context, types.UID) (SyncResult, error) {
		return SyncResult{}, errors.New("fails")
	})
	w := newTestWorkers(t, WorkerConfig{Clock: clocktesting.NewFakeClock(t0)}, syncer, criapitesting.NewFakeRuntimeService())
	w.Enqueue("a")
	drain(ctx, t, w)
	if got := w.trackedPods(); got != 1 {
		t.Errorf("trackedPods() = %d, want 1 (a's retry)", got)
	}
}
