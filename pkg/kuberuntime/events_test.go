package kuberuntime

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// sinkSource is an EventSource that hands its sink to the test.
type sinkSource chan EventSink

func (s sinkSource) Run(ctx context.Context, sink EventSink) {
	s <- sink
	<-ctx.Done()
}

// relists counts the relists the fake runtime served.
func relists(rt *criapitesting.FakeRuntimeService) int {
	n := 0
	for _, c := range rt.GetCalls() {
		if c == "ListPodSandbox" {
			n++
		}
	}
	return n
}

// The event sink of the workers: a (re)connection relists once at once,
// and the relist period (and so the pleg threshold) follows whether a
// stream is connected; Enqueue and PodOf reach the queue and the last
// relist. No timer fires: the fake clock never moves.
func TestWorkersEventSink(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := criapitesting.NewFakeRuntimeService()
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("ca", "a", runtimeapi.ContainerState_CONTAINER_RUNNING)})
	// A syncer that never finishes keeps the queue's content for the test.
	block := make(chan struct{})
	s := syncerFunc(func(ctx context.Context, uid types.UID) (SyncResult, error) {
		<-block
		return SyncResult{}, nil
	})
	src := make(sinkSource, 1)
	w := NewWorkers(WorkerConfig{Workers: 1, Resync: time.Hour, RelistPeriod: 10 * time.Minute, RelistPeriodWithoutEvents: time.Second, Clock: clk, Events: src}, s, rt)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	sink := <-src

	waitRelists := func(n int, why string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
			return relists(rt) >= n, nil
		})
		if err != nil {
			t.Fatalf("%d relists, want %d %s", relists(rt), n, why)
		}
	}
	waitRelists(1, "at the start")
	if got := w.relistPeriod(); got != time.Second {
		t.Errorf("relist period without events = %v, want 1s", got)
	}
	if uid, ok := sink.PodOf("ca"); !ok || uid != "a" {
		t.Errorf("PodOf(ca) = %q, %v; want a, true", uid, ok)
	}
	if _, ok := sink.PodOf("unknown"); ok {
		t.Error("PodOf(unknown) found a pod")
	}

	sink.Connected(true)
	waitRelists(2, "after the connection")
	if got := w.relistPeriod(); got != 10*time.Minute {
		t.Errorf("relist period with events = %v, want 10m", got)
	}
	// The pleg threshold follows: two periods of 10m.
	w.healthMu.Lock()
	w.health.relisted = clk.Now().Add(-15 * time.Minute)
	w.healthMu.Unlock()
	checkHealth(t, w.RelistHealthy(), "")

	sink.Connected(false)
	waitRelists(3, "after the disconnection")
	if got := w.relistPeriod(); got != time.Second {
		t.Errorf("relist period after the disconnection = %v, want 1s", got)
	}
	sink.Relist()
	waitRelists(4, "when asked")
	if got := relists(rt); got != 4 {
		t.Errorf("%d relists, want 4: one at the start, one per request", got)
	}

	sink.Enqueue("b")
	err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return w.queue.Len() >= 1, nil
	})
	if err != nil {
		t.Fatal("Enqueue did not reach the queue")
	}
	cancel()
	close(block)
	<-done
}

// Requests for a relist that come while one is pending make one relist.
func TestWorkersRelistRequestsCoalesce(t *testing.T) {
	w := newTestWorkers(t, WorkerConfig{RelistPeriod: time.Second}, newCountingSyncer(nil), criapitesting.NewFakeRuntimeService())
	for range 3 {
		w.requestRelist()
	}
	if got := len(w.relistNow); got != 1 {
		t.Errorf("%d relists pending, want 1", got)
	}
}
