package kuberuntime

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// syncerFunc adapts a function to PodSyncer, so each test says in one place
// what its syncs answer and what they record.
type syncerFunc func(ctx context.Context, uid types.UID) (SyncResult, error)

func (f syncerFunc) SyncPod(ctx context.Context, uid types.UID) (SyncResult, error) {
	return f(ctx, uid)
}

// countingSyncer records how often each pod was synced and answers every
// sync with result.
type countingSyncer struct {
	mu     sync.Mutex
	calls  map[types.UID]int
	result func(uid types.UID, call int) (time.Duration, error)
}

func newCountingSyncer(result func(uid types.UID, call int) (time.Duration, error)) *countingSyncer {
	return &countingSyncer{calls: map[types.UID]int{}, result: result}
}

func (s *countingSyncer) SyncPod(_ context.Context, uid types.UID) (SyncResult, error) {
	s.mu.Lock()
	s.calls[uid]++
	n := s.calls[uid]
	s.mu.Unlock()
	after, err := s.result(uid, n)
	return SyncResult{RequeueAfter: after}, err
}

func (s *countingSyncer) count(uid types.UID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[uid]
}

// newTestWorkers returns Workers whose queue is shut down and timed syncs
// stopped when the test ends, as Run does when it returns.
func newTestWorkers(t *testing.T, cfg WorkerConfig, syncer PodSyncer, rt Runtime) *Workers {
	t.Helper()
	w := NewWorkers(cfg, syncer, rt)
	t.Cleanup(func() {
		w.queue.ShutDown()
		w.stopTimers()
	})
	return w
}

// queued empties the queue and returns the pods it held, sorted, so a test
// sees exactly which pods one relist enqueued.
func queued(w *Workers) []types.UID {
	var out []types.UID
	for w.queue.Len() > 0 {
		uid, _ := w.queue.Get()
		w.queue.Done(uid)
		out = append(out, uid)
	}
	slices.Sort(out)
	return out
}

// waitQueued waits until the pod is back in the queue, ready to be synced.
// Requeues go through the workers' timers on the real clock, hence the
// polling.
func waitQueued(ctx context.Context, t *testing.T, w *Workers, why string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return w.queue.Len() == 1, nil
	})
	if err != nil {
		t.Fatalf("pod not queued again %s: %v", why, err)
	}
}

// criSandbox is a sandbox of the pod with that UID; pod "" leaves the
// UID label out, as on a sandbox some other tool created.
func criSandbox(id, pod string, st runtimeapi.PodSandboxState) *criapitesting.FakePodSandbox {
	s := &criapitesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: id, State: st, Metadata: &runtimeapi.PodSandboxMetadata{Name: id, Uid: pod}, Labels: map[string]string{"other": "label"},
	}}
	if pod != "" {
		s.Labels[criconfig.LabelPodUID] = pod
	}
	return s
}

// criContainer is a container of the pod with that UID; pod "" leaves the
// UID label out.
func criContainer(id, pod string, st runtimeapi.ContainerState) *criapitesting.FakeContainer {
	c := &criapitesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
		Id: id, State: st, Metadata: &runtimeapi.ContainerMetadata{Name: id}, Labels: map[string]string{"other": "label"},
	}}
	if pod != "" {
		c.Labels[criconfig.LabelPodUID] = pod
	}
	return c
}

// criState is what the runtime holds at one relist.
type criState struct {
	sandboxes  []*criapitesting.FakePodSandbox
	containers []*criapitesting.FakeContainer
}

func (s criState) install(rt *criapitesting.FakeRuntimeService) {
	rt.SetFakeSandboxes(s.sandboxes)
	rt.SetFakeContainers(s.containers)
}

func TestWorkersRelist(t *testing.T) {
	const (
		sbReady    = runtimeapi.PodSandboxState_SANDBOX_READY
		sbNotReady = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		cRunning   = runtimeapi.ContainerState_CONTAINER_RUNNING
		cExited    = runtimeapi.ContainerState_CONTAINER_EXITED
		cCreated   = runtimeapi.ContainerState_CONTAINER_CREATED
	)
	// Pod a runs one container in one sandbox; pod b likewise.
	base := func() criState {
		return criState{
			sandboxes:  []*criapitesting.FakePodSandbox{criSandbox("sa", "a", sbReady), criSandbox("sb", "b", sbReady)},
			containers: []*criapitesting.FakeContainer{criContainer("ca", "a", cRunning), criContainer("cb", "b", cRunning)},
		}
	}
	with := func(mutate func(*criState)) criState {
		s := base()
		mutate(&s)
		return s
	}
	for _, tc := range []struct {
		name   string
		before criState
		after  criState
		want   []types.UID
	}{
		{
			name:   "nothing changed: nothing enqueued",
			before: base(),
			after:  base(),
		},
		{
			name:   "a container appears",
			before: base(),
			after:  with(func(s *criState) { s.containers = append(s.containers, criContainer("ca2", "a", cCreated)) }),
			want:   []types.UID{"a"},
		},
		{
			name:   "a container exits",
			before: base(),
			after:  with(func(s *criState) { s.containers[0] = criContainer("ca", "a", cExited) }),
			want:   []types.UID{"a"},
		},
		{
			name:   "a container vanishes",
			before: base(),
			after:  with(func(s *criState) { s.containers = s.containers[1:] }),
			want:   []types.UID{"a"},
		},
		{
			name:   "a sandbox appears",
			before: base(),
			after:  with(func(s *criState) { s.sandboxes = append(s.sandboxes, criSandbox("sb2", "b", sbReady)) }),
			want:   []types.UID{"b"},
		},
		{
			name:   "a sandbox stops",
			before: base(),
			after:  with(func(s *criState) { s.sandboxes[1] = criSandbox("sb", "b", sbNotReady) }),
			want:   []types.UID{"b"},
		},
		{
			name:   "a sandbox vanishes",
			before: base(),
			after:  with(func(s *criState) { s.sandboxes = s.sandboxes[:1] }),
			want:   []types.UID{"b"},
		},
		{
			name:   "both pods change",
			before: base(),
			after:  with(func(s *criState) { s.containers = nil }),
			want:   []types.UID{"a", "b"},
		},
		{
			name: "objects without the pod UID label are not a pod's",
			before: with(func(s *criState) {
				s.sandboxes = append(s.sandboxes, criSandbox("foreign-sb", "", sbReady))
				s.containers = append(s.containers, criContainer("foreign-c1", "", cRunning), criContainer("foreign-c2", "", cRunning))
			}),
			after: with(func(s *criState) {
				// foreign-sb stops, foreign-c1 exits, foreign-c2 vanishes,
				// foreign-c3 appears.
				s.sandboxes = append(s.sandboxes, criSandbox("foreign-sb", "", sbNotReady))
				s.containers = append(s.containers, criContainer("foreign-c1", "", cExited), criContainer("foreign-c3", "", cCreated))
			}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			rt := criapitesting.NewFakeRuntimeService()
			w := newTestWorkers(t, WorkerConfig{}, newCountingSyncer(nil), rt)
			tc.before.install(rt)
			w.relist(ctx)
			queued(w) // the first relist finds every pod; see TestWorkersFirstRelist
			tc.after.install(rt)
			w.relist(ctx)
			if got := queued(w); !slices.Equal(got, tc.want) {
				t.Errorf("enqueued %v, want %v", got, tc.want)
			}
		})
	}
}

// The first relist after a start sees every pod of the runtime as new, so
// pods deleted while the agent was down get a sync that removes them.
func TestWorkersFirstRelist(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	w := newTestWorkers(t, WorkerConfig{}, newCountingSyncer(nil), rt)
	criState{
		sandboxes:  []*criapitesting.FakePodSandbox{criSandbox("sa", "a", runtimeapi.PodSandboxState_SANDBOX_NOTREADY), criSandbox("foreign", "", runtimeapi.PodSandboxState_SANDBOX_READY)},
		containers: []*criapitesting.FakeContainer{criContainer("cb", "b", runtimeapi.ContainerState_CONTAINER_EXITED)},
	}.install(rt)
	w.relist(ctx)
	if got, want := queued(w), []types.UID{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}

// A failed relist must not replace what the last good one saw: a change it
// missed is then found by the next relist instead of being lost.
func TestWorkersRelistFailureKeepsLastSeen(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	w := newTestWorkers(t, WorkerConfig{}, newCountingSyncer(nil), rt)
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("ca", "a", runtimeapi.ContainerState_CONTAINER_RUNNING)})
	w.relist(ctx)
	queued(w)

	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("ca", "a", runtimeapi.ContainerState_CONTAINER_EXITED)})
	for _, call := range []string{"ListPodSandbox", "ListContainers"} {
		rt.InjectError(call, errors.New("runtime restarting"))
		w.relist(ctx)
		if got := queued(w); len(got) != 0 {
			t.Errorf("relist failing in %s enqueued %v", call, got)
		}
	}
	w.relist(ctx)
	if got, want := queued(w), []types.UID{"a"}; !slices.Equal(got, want) {
		t.Errorf("relist after the failures enqueued %v, want %v", got, want)
	}
}

func TestWorkersRequeue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resync time.Duration
		after  time.Duration
		// back says whether the pod comes back soon; when false it must
		// not be back at once (its delay is an hour or more).
		back bool
	}{
		{name: "the delay SyncPod returns", resync: time.Hour, after: 20 * time.Millisecond, back: true},
		{name: "no delay: the resync period", resync: 20 * time.Millisecond, back: true},
		{name: "resync shorter than the delay wins", resync: 20 * time.Millisecond, after: time.Hour, back: true},
		{name: "long delay: not at once", resync: 2 * time.Hour, after: time.Hour},
		{name: "the delay SyncPod returns, without resync", after: 20 * time.Millisecond, back: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			s := newCountingSyncer(func(types.UID, int) (time.Duration, error) { return tc.after, nil })
			w := newTestWorkers(t, WorkerConfig{Resync: tc.resync}, s, criapitesting.NewFakeRuntimeService())
			w.Enqueue("a")
			if !w.processNext(ctx) {
				t.Fatal("processNext reports a shut-down queue")
			}
			if n := s.count("a"); n != 1 {
				t.Fatalf("pod synced %d times, want 1", n)
			}
			if n := w.limiter.NumRequeues("a"); n != 0 {
				t.Errorf("a successful sync left %d rate-limited requeues", n)
			}
			if !tc.back {
				if n := w.queue.Len(); n != 0 {
					t.Errorf("pod queued again at once (%d), want after its delay", n)
				}
				return
			}
			waitQueued(ctx, t, w, "after its delay")
		})
	}
}

func TestWorkersRetryWithBackoff(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	// Two failures, one that is logged and one that only asks for a retry,
	// then success.
	s := newCountingSyncer(func(_ types.UID, call int) (time.Duration, error) {
		switch call {
		case 1:
			return 0, errors.New("runtime unavailable")
		case 2:
			return 0, errRetry
		}
		return 0, nil
	})
	w := newTestWorkers(t, WorkerConfig{Resync: time.Hour}, s, criapitesting.NewFakeRuntimeService())
	w.Enqueue("a")
	for failure := 1; failure <= 2; failure++ {
		w.processNext(ctx)
		// NumRequeues is what the rate limiter's exponential backoff grows
		// from; its actual delays (500ms, 1s) are the limiter's business.
		if n := w.limiter.NumRequeues("a"); n != failure {
			t.Fatalf("after failure %d: %d rate-limited requeues, want %d", failure, n, failure)
		}
		waitQueued(ctx, t, w, "after a failure")
	}
	w.processNext(ctx)
	if n := w.limiter.NumRequeues("a"); n != 0 {
		t.Errorf("success did not forget the failures: %d rate-limited requeues", n)
	}
	if n := s.count("a"); n != 3 {
		t.Errorf("pod synced %d times, want 3", n)
	}
}

// A pod whose sync failed is not synced again by a change of its status
// alone (the failure's own status write): it waits for its retry, so a
// failure that rewrites the status each time cannot loop past the backoff.
// A change of its spec (a debugger added) syncs it at once, and once a sync
// succeeds, status changes sync it again.
func TestWorkersStatusChangeWaitsForRetry(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	s := newCountingSyncer(func(_ types.UID, call int) (time.Duration, error) {
		if call <= 2 {
			return 0, errRetry
		}
		return 0, nil
	})
	w := newTestWorkers(t, WorkerConfig{Resync: time.Hour}, s, criapitesting.NewFakeRuntimeService())
	w.EnqueueStatusChange("a")
	w.processNext(ctx) // fails
	w.stopTimer("a")   // the retry is the limiter's business, not this test's
	w.EnqueueStatusChange("a")
	if n := w.queue.Len(); n != 0 {
		t.Fatalf("a failing pod queued again by a status change (%d)", n)
	}
	w.Enqueue("a")
	if n := w.queue.Len(); n != 1 {
		t.Fatalf("a failing pod not queued by a spec change (%d)", n)
	}
	w.processNext(ctx) // fails again
	w.stopTimer("a")
	w.EnqueueStatusChange("a")
	if n := w.queue.Len(); n != 0 {
		t.Fatalf("a failing pod queued again by a status change (%d)", n)
	}
	w.Enqueue("a")
	w.processNext(ctx) // succeeds
	w.stopTimer("a")
	w.EnqueueStatusChange("a")
	if n := w.queue.Len(); n != 1 {
		t.Errorf("a healthy pod not queued by a status change (%d)", n)
	}
	if n := s.count("a"); n != 3 {
		t.Errorf("pod synced %d times, want 3", n)
	}
}

// A failed sync that asked to come back sooner than its backoff (a
// container's restart due then) comes back then: another container's
// failures do not hold it.
func TestWorkersRetryNoLaterThanAsked(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	s := newCountingSyncer(func(types.UID, int) (time.Duration, error) { return 20 * time.Millisecond, errRetry })
	w := newTestWorkers(t, WorkerConfig{Resync: time.Hour}, s, criapitesting.NewFakeRuntimeService())
	// Failures before: the backoff has grown to its 30s cap.
	for range 8 {
		w.limiter.When("a")
	}
	w.Enqueue("a")
	w.processNext(ctx)
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return w.queue.Len() == 1, nil
	})
	if err != nil {
		t.Fatalf("the pod was not synced again when its sync asked (20ms), but after its failure backoff: %v", err)
	}
	if n := w.limiter.NumRequeues("a"); n != 9 {
		t.Errorf("%d rate-limited requeues, want 9: the failure still counts", n)
	}
}

// A sync that fails because the agent is stopping is no failure of the pod:
// it is not retried.
func TestWorkersNoRetryWhenStopping(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	s := newCountingSyncer(func(types.UID, int) (time.Duration, error) { cancel(); return 0, context.Canceled })
	w := newTestWorkers(t, WorkerConfig{Resync: time.Hour}, s, criapitesting.NewFakeRuntimeService())
	w.Enqueue("a")
	w.processNext(ctx)
	if n := w.limiter.NumRequeues("a"); n != 0 {
		t.Errorf("%d rate-limited requeues after a sync cut short by shutdown, want 0", n)
	}
}

// waitEntered waits for syncs of exactly the pods want to start, in any
// order.
func waitEntered(t *testing.T, entered <-chan types.UID, want ...types.UID) {
	t.Helper()
	var got []types.UID
	for range want {
		select {
		case uid := <-entered:
			got = append(got, uid)
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatalf("syncs started: %v, want %v", got, want)
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("syncs started: %v, want %v", got, want)
	}
}

func TestWorkersOneSyncPerPodAtATime(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	entered := make(chan types.UID, 10)
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		inFlight = map[types.UID]int{}
		calls    = map[types.UID]int{}
		overlaps []types.UID
	)
	// Every first sync of a pod blocks until released, so the test decides
	// which syncs overlap.
	syncer := syncerFunc(func(ctx context.Context, uid types.UID) (SyncResult, error) {
		mu.Lock()
		inFlight[uid]++
		if inFlight[uid] > 1 {
			overlaps = append(overlaps, uid)
		}
		calls[uid]++
		first := calls[uid] == 1
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight[uid]--
			mu.Unlock()
		}()
		entered <- uid
		if first {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return SyncResult{}, nil
	})
	w := NewWorkers(WorkerConfig{Workers: 3, Resync: time.Hour, RelistPeriod: time.Hour}, syncer, criapitesting.NewFakeRuntimeService())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	w.Enqueue("a")
	w.Enqueue("b")
	// Both block in SyncPod at once: different pods sync in parallel.
	waitEntered(t, entered, "a", "b")

	// a changes again while its sync runs, then c. The queue hands items
	// out in order, so once the idle third worker has taken c it has passed
	// over a's second request instead of syncing a twice at once.
	w.Enqueue("a")
	w.Enqueue("c")
	waitEntered(t, entered, "c")

	// a's second request is not lost: it is synced once the first ends.
	close(release)
	waitEntered(t, entered, "a")

	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Errorf("pods synced twice at once: %v", overlaps)
	}
	if want := map[types.UID]int{"a": 2, "b": 1, "c": 1}; !maps.Equal(calls, want) {
		t.Errorf("syncs %v, want %v", calls, want)
	}
}

// Run wires the relist to the syncs: a container that exits gets its pod
// synced without any other event.
func TestWorkersRunSyncsOnRelist(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	rt := criapitesting.NewFakeRuntimeService()
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("ca", "a", runtimeapi.ContainerState_CONTAINER_RUNNING)})
	s := newCountingSyncer(func(types.UID, int) (time.Duration, error) { return 0, nil })
	w := NewWorkers(WorkerConfig{Workers: 2, Resync: time.Hour, RelistPeriod: 10 * time.Millisecond}, s, rt)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	waitSyncs := func(n int, why string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
			return s.count("a") >= n, nil
		})
		if err != nil {
			t.Fatalf("pod not synced %s (%d syncs): %v", why, s.count("a"), err)
		}
	}
	waitSyncs(1, "by the first relist")
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("ca", "a", runtimeapi.ContainerState_CONTAINER_EXITED)})
	waitSyncs(2, "after its container exited")

	cancel()
	select {
	case <-done:
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("Run did not return after its context ended")
	}
}
