package kuberuntime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestSyncLoopHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const threshold = 5 * time.Minute
	for _, tc := range []struct {
		name    string
		h       healthClock
		waiting int
		now     time.Time
		want    string // "" for healthy, else part of the error
	}{
		{"not started", healthClock{}, 3, t0.Add(time.Hour), ""},
		{"idle for long", healthClock{started: t0, progress: t0}, 0, t0.Add(time.Hour), ""},
		{"waiting, progress within threshold", healthClock{started: t0, progress: t0.Add(time.Minute)}, 2, t0.Add(threshold), ""},
		{"waiting, no progress exactly at threshold", healthClock{started: t0, progress: t0}, 2, t0.Add(threshold), ""},
		{"waiting, no progress past threshold", healthClock{started: t0, progress: t0}, 2, t0.Add(threshold + time.Second),
			"sync Loop took longer than expected: no pod sync started or ended in 5m1s while 2 pods wait; threshold is 5m0s"},
		{"waiting, never progressed since start", healthClock{started: t0}, 1, t0.Add(threshold + time.Minute), "sync Loop took longer than expected"},
		// Progress from before a restart of Run does not count, nor against it.
		{"progress older than start", healthClock{started: t0, progress: t0.Add(-time.Hour)}, 1, t0.Add(time.Minute), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkHealth(t, syncLoopHealth(tc.h, tc.waiting, tc.now, threshold), tc.want)
		})
	}
}

func TestRelistHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const threshold = 3 * time.Minute
	for _, tc := range []struct {
		name string
		h    healthClock
		now  time.Time
		want string
	}{
		{"not started", healthClock{}, t0.Add(time.Hour), ""},
		{"first relist pending within threshold", healthClock{started: t0}, t0.Add(threshold), ""},
		{"first relist never completed", healthClock{started: t0}, t0.Add(threshold + time.Second), "pleg has yet to be successful"},
		{"recent relist", healthClock{started: t0, relisted: t0.Add(time.Hour)}, t0.Add(time.Hour + time.Second), ""},
		{"relist late", healthClock{started: t0, relisted: t0}, t0.Add(threshold + time.Second),
			"pleg was last seen active 3m1s ago; threshold is 3m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkHealth(t, relistHealth(tc.h, tc.now, threshold), tc.want)
		})
	}
}

func TestHealthThresholds(t *testing.T) {
	// The kubelet's rules: twice --sync-frequency, at least 5 minutes; the
	// PLEG's 3 minutes.
	for _, tc := range []struct{ resync, want time.Duration }{
		{0, 5 * time.Minute}, {time.Minute, 5 * time.Minute}, {10 * time.Minute, 20 * time.Minute},
	} {
		if got := syncLoopThreshold(tc.resync); got != tc.want {
			t.Errorf("syncLoopThreshold(%v) = %v, want %v", tc.resync, got, tc.want)
		}
	}
	for _, tc := range []struct{ period, want time.Duration }{
		{time.Second, 3 * time.Minute}, {5 * time.Minute, 10 * time.Minute},
	} {
		if got := relistThreshold(tc.period); got != tc.want {
			t.Errorf("relistThreshold(%v) = %v, want %v", tc.period, got, tc.want)
		}
	}
}

func checkHealth(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unhealthy: %v, want healthy", err)
	case want != "" && err == nil:
		t.Errorf("healthy, want an error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

// TestWorkersRelistHealth: a completed relist keeps the pleg check healthy;
// failed ones (the runtime unreachable) do not, and past the threshold it
// fails with the kubelet's message.
func TestWorkersRelistHealth(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := criapitesting.NewFakeRuntimeService()
	w := newTestWorkers(t, WorkerConfig{RelistPeriod: time.Second, Clock: clk}, newCountingSyncer(nil), rt)
	w.health.started = clk.Now()

	clk.Step(RelistThreshold + time.Second)
	checkHealth(t, w.RelistHealthy(), "pleg has yet to be successful")
	w.relist(ctx)
	checkHealth(t, w.RelistHealthy(), "")

	clk.Step(time.Minute)
	rt.InjectError("ListPodSandbox", errors.New("connection refused"))
	w.relist(ctx)
	clk.Step(RelistThreshold)
	checkHealth(t, w.RelistHealthy(), "pleg was last seen active 4m0s ago; threshold is 3m0s")
	w.relist(ctx)
	checkHealth(t, w.RelistHealthy(), "")
}

// TestWorkersSyncLoopHealth: with every worker stuck in a sync and pods
// waiting, the syncloop check fails once the threshold passes, and passes
// again as soon as syncs go on.
func TestWorkersSyncLoopHealth(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	release := make(chan struct{})
	started := make(chan types.UID, 10)
	s := syncerFunc(func(ctx context.Context, uid types.UID) (SyncResult, error) {
		started <- uid
		if uid == "stuck" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return SyncResult{}, nil
	})
	rt := criapitesting.NewFakeRuntimeService()
	w := NewWorkers(WorkerConfig{Workers: 1, Resync: time.Minute, RelistPeriod: time.Hour, Clock: clk}, s, rt)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait.ForeverTestTimeout):
			t.Error("Run did not return after its context ended")
		}
	}()

	w.Enqueue("stuck")
	<-started
	// One long sync (a pod's grace period) with no other pod to serve is
	// not a stuck loop; one that holds other pods back is.
	clk.Step(2 * MinSyncLoopThreshold)
	checkHealth(t, w.SyncLoopHealthy(), "")
	w.Enqueue("waiting")
	checkHealth(t, w.SyncLoopHealthy(), "sync Loop took longer than expected: no pod sync started or ended in 10m0s while 1 pods wait")

	close(release)
	if uid := <-started; uid != "waiting" {
		t.Fatalf("synced %q, want the waiting pod", uid)
	}
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return w.SyncLoopHealthy() == nil, nil
	})
	if err != nil {
		t.Errorf("syncloop still unhealthy after syncs went on: %v", w.SyncLoopHealthy())
	}
}
