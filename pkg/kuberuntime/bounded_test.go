package kuberuntime

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/admission"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// perPod tracks, for every collaborator of the sync loop that keeps
// something per pod, which pods it holds something of: a pod enters with
// the call that makes the collaborator keep state (SetPodStatus,
// EnsureImage, UpdatePod, Admit, SetUp) and leaves with the one that drops
// it (ForgetPod, Forget, TearDown). It stands in for the real ones, whose
// own tests show that their forget calls empty their maps.
type perPod struct {
	mu   sync.Mutex
	held map[string]map[types.UID]bool
}

func newPerPod() *perPod { return &perPod{held: map[string]map[types.UID]bool{}} }

func (p *perPod) add(who string, uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[who] == nil {
		p.held[who] = map[types.UID]bool{}
	}
	p.held[who][uid] = true
}

func (p *perPod) drop(who string, uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held[who], uid)
}

// leftovers names, per collaborator, the pods it still holds.
func (p *perPod) leftovers() map[string][]types.UID {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]types.UID{}
	for who, uids := range p.held {
		if len(uids) > 0 {
			out[who] = slices.Sorted(maps.Keys(uids))
		}
	}
	return out
}

type trackedStatus struct{ *perPod }

func (s trackedStatus) SetPodStatus(pod *v1.Pod, _ *podstate.PodState, _ map[podstate.ContainerKey]podstate.Waiting) {
	s.add("status", pod.UID)
}
func (trackedStatus) DeletePod(context.Context, *v1.Pod) error { return nil }
func (s trackedStatus) ForgetPod(uid types.UID)                { s.drop("status", uid) }

type trackedImages struct{ *perPod }

func (i trackedImages) EnsureImage(_ context.Context, _ *v1.ObjectReference, pod *v1.Pod, image string, _ v1.PullPolicy, _ []v1.Secret, _ *runtimeapi.PodSandboxConfig) (string, error) {
	i.add("images", pod.UID)
	return image, nil
}
func (trackedImages) ImageUser(context.Context, string) (*int64, string, error) { return nil, "", nil }
func (i trackedImages) ForgetPod(uid types.UID)                                 { i.drop("images", uid) }

type trackedProber struct{ *perPod }

func (p trackedProber) UpdatePod(pod *v1.Pod, _ *podstate.PodState) map[string]podstate.Probed {
	p.add("prober", pod.UID)
	return nil
}
func (p trackedProber) ForgetPod(uid types.UID) { p.drop("prober", uid) }

type trackedGate struct{ *perPod }

func (g trackedGate) Admit(_ context.Context, pod *v1.Pod) (admission.Result, bool) {
	g.add("gate", pod.UID)
	return admission.Result{Admit: true}, false
}
func (g trackedGate) Forget(uid types.UID) { g.drop("gate", uid) }

type trackedVolumes struct{ *perPod }

func (v trackedVolumes) SetUp(_ context.Context, pod *v1.Pod) (Mounter, error) {
	v.add("volumes", pod.UID)
	return noMounter{}, nil
}
func (v trackedVolumes) TearDown(_ context.Context, uid types.UID) error {
	v.drop("volumes", uid)
	return nil
}

// cleanCalls forgets the runtime's calls so far.
func cleanCalls(rt *criapitesting.FakeRuntimeService) {
	rt.Lock()
	defer rt.Unlock()
	rt.Called = nil
}

// drain syncs every pod the queue holds until it is empty; the fake clock
// stands still meanwhile, so timed syncs and retries wait.
func drain(ctx context.Context, t *testing.T, w *Workers) {
	t.Helper()
	for i := 0; w.queue.Len() > 0; i++ {
		if i > 1000 {
			t.Fatal("the queue does not drain")
		}
		w.processNext(ctx)
	}
}

// TestWorkersForgetGonePod: a pod whose sync reports it gone leaves the
// queue, its backoff and its timed sync; it is not synced again when the
// resync period passes, while a live pod is.
func TestWorkersForgetGonePod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	clk := clocktesting.NewFakeClock(t0)
	var (
		mu    sync.Mutex
		gone  = map[types.UID]bool{}
		fails = map[types.UID]bool{}
		calls = map[types.UID]int{}
	)
	syncer := syncerFunc(func(_ context.Context, uid types.UID) (SyncResult, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[uid]++
		switch {
		case fails[uid]:
			return SyncResult{}, errRetry
		case gone[uid]:
			return SyncResult{Gone: true}, nil
		}
		return SyncResult{RequeueAfter: 10 * time.Second}, nil
	})
	rt := criapitesting.NewFakeRuntimeService()
	w := newTestWorkers(t, WorkerConfig{Resync: time.Minute, Clock: clk}, syncer, rt)
	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{criSandbox("sa", "a", runtimeapi.PodSandboxState_SANDBOX_READY), criSandbox("sb", "b", runtimeapi.PodSandboxState_SANDBOX_READY)})
	w.relist(ctx)
	drain(ctx, t, w)
	if got := slices.Sorted(maps.Keys(w.timers)); !slices.Equal(got, []types.UID{"a", "b"}) {
		t.Fatalf("timed syncs of %v, want a and b", got)
	}

	// b fails twice, then it is gone from the API and the runtime.
	mu.Lock()
	fails["b"] = true
	mu.Unlock()
	w.Enqueue("b")
	drain(ctx, t, w)
	clk.Step(time.Second) // the first retry's 500ms
	waitQueued(ctx, t, w, "after a failure")
	drain(ctx, t, w)
	if n := w.limiter.NumRequeues("b"); n != 2 {
		t.Fatalf("b: %d rate-limited requeues, want 2", n)
	}
	mu.Lock()
	fails["b"], gone["b"] = false, true
	mu.Unlock()
	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{criSandbox("sa", "a", runtimeapi.PodSandboxState_SANDBOX_READY)})
	w.Enqueue("b")
	drain(ctx, t, w)

	if n := w.limiter.NumRequeues("b"); n != 0 {
		t.Errorf("gone pod keeps %d rate-limited requeues", n)
	}
	if got := slices.Collect(maps.Keys(w.timers)); !slices.Equal(got, []types.UID{"a"}) {
		t.Errorf("timed syncs of %v, want only a's", got)
	}
	for id, o := range w.lastSeen {
		if o.pod == "b" {
			t.Errorf("the gone pod's sandbox %s is still remembered", id)
		}
	}
	// Its sandbox vanished with it: the relist does not bring it back.
	w.relist(ctx)
	if got := queued(w); len(got) != 0 {
		t.Errorf("relist after the removal enqueued %v", got)
	}

	mu.Lock()
	before := maps.Clone(calls)
	mu.Unlock()
	for range 5 {
		clk.Step(time.Minute)
		drain(ctx, t, w)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["b"] != before["b"] {
		t.Errorf("gone pod synced %d more times over five resync periods, want 0", calls["b"]-before["b"])
	}
	if calls["a"] < before["a"]+5 {
		t.Errorf("live pod synced %d more times over five resync periods, want at least 5", calls["a"]-before["a"])
	}
}

// TestSyncDeletedPodsLeaveNothing is the create/delete churn: after many
// pods came and went, with the real Syncer and Workers on a fake runtime,
// nothing of them is left in the queue, the workers' maps, the runtime or
// any collaborator, and the resync period syncs none of them again.
func TestSyncDeletedPodsLeaveNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const cycles = 50
	clk := clocktesting.NewFakeClock(t0)
	rt := criapitesting.NewFakeRuntimeService()
	held := newPerPod()
	api := pt.NewPodCache()
	dir := t.TempDir()
	metrics := NewMetrics(nil)
	s := NewSyncer(Config{PodLogsDir: dir + "/logs", RootDir: dir}, Deps{
		Runtime: rt, Pods: api, Images: trackedImages{held}, Volumes: trackedVolumes{held}, Secrets: fakeSecrets{},
		Status: trackedStatus{held}, Recorder: record.NewFakeRecorder(1000), Clock: clk,
		Records: podstate.NewRecordStore(dir + "/pods"), Metrics: metrics,
		Prober: trackedProber{held}, Gate: trackedGate{held},
	})
	const resync = time.Minute
	w := newTestWorkers(t, WorkerConfig{Resync: resync, Clock: clk}, s, rt)

	// One pod lives through it all: the timed syncs do run.
	live := testPod(func(p *v1.Pod) { p.Name, p.UID = "live", "live" })
	api.Set(live)
	w.Enqueue(live.UID)
	drain(ctx, t, w)

	for i := range cycles {
		uid := types.UID(fmt.Sprintf("churn-%d", i))
		pod := testPod(withEphemeral("debugger", "app"), func(p *v1.Pod) { p.Name, p.UID = string(uid), uid })
		api.Set(pod)
		w.Enqueue(uid) // the informer's add
		drain(ctx, t, w)
		w.relist(ctx)
		drain(ctx, t, w)
		if n := len(containersNamed(t, rt, "debugger")); n != 1 {
			t.Fatalf("cycle %d: %d debugger containers, want the new pod's", i, n)
		}
		// A debugger whose start was planned when the pod went: its
		// start time must go with the pod.
		metrics.ephemeralPlanned(uid, "late", clk.Now())

		api.Remove(uid)
		w.Enqueue(uid) // the informer's delete
		drain(ctx, t, w)
		w.relist(ctx)
		drain(ctx, t, w)
	}

	if n := w.queue.Len(); n != 0 {
		t.Errorf("queue holds %d pods, want 0", n)
	}
	if got := slices.Collect(maps.Keys(w.timers)); !slices.Equal(got, []types.UID{live.UID}) {
		t.Errorf("timed syncs of %v, want only the live pod's", got)
	}
	for id, o := range w.lastSeen {
		if o.pod != live.UID {
			t.Errorf("relist still remembers %s of gone pod %s", id, o.pod)
		}
	}
	for i := range cycles {
		if n := w.limiter.NumRequeues(types.UID(fmt.Sprintf("churn-%d", i))); n != 0 {
			t.Errorf("churn-%d keeps %d rate-limited requeues", i, n)
		}
	}
	if got := held.leftovers(); !maps.EqualFunc(got, map[string][]types.UID{
		"status": {live.UID}, "images": {live.UID}, "prober": {live.UID}, "gate": {live.UID}, "volumes": {live.UID},
	}, slices.Equal) {
		t.Errorf("collaborators hold %v, want only the live pod", got)
	}
	metrics.mu.Lock()
	if n := len(metrics.firstSeen); n != 0 {
		t.Errorf("metrics keep %d ephemeral start times of gone pods", n)
	}
	metrics.mu.Unlock()
	sandboxes, _ := rt.ListPodSandbox(ctx, nil)
	containers, _ := rt.ListContainers(ctx, nil)
	if len(sandboxes) != 1 || len(containers) != 1 {
		t.Errorf("runtime holds %d sandboxes and %d containers, want the live pod's 1 and 1", len(sandboxes), len(containers))
	}

	// Several resync periods later only the live pod was synced: one
	// Observe (two lists and the sandbox's status) per period.
	cleanCalls(rt)
	const periods = 3
	for range periods {
		clk.Step(resync)
		drain(ctx, t, w)
	}
	lists := 0
	for _, c := range rt.GetCalls() {
		if c == "ListPodSandbox" {
			lists++
		}
	}
	if lists != periods {
		t.Errorf("%d ListPodSandbox calls over %d resync periods, want %d (the live pod's only)", lists, periods, periods)
	}
}

// keepingRuntime says yes to RemovePodSandbox but keeps the sandbox, as a
// runtime that lost the call.
type keepingRuntime struct {
	*criapitesting.FakeRuntimeService
}

func (keepingRuntime) RemovePodSandbox(context.Context, string) error { return nil }

// A pod gone from the API is gone for the workers only once the runtime,
// observed again, holds nothing of it.
func TestSyncRemovedPodIsGoneOnlyWhenNothingIsLeft(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	s.Pods = fakePods{}
	s.Runtime = keepingRuntime{rt}
	if res, err := s.SyncPod(ctx, pod.UID); err == nil || res.Gone {
		t.Fatalf("sync with the sandbox still there: %+v, %v; want an error, not gone", res, err)
	}
	s.Runtime = rt
	res, err := s.SyncPod(ctx, pod.UID)
	if err != nil || !res.Gone {
		t.Fatalf("sync after the removal: %+v, %v; want gone", res, err)
	}
	if sbs, _ := rt.ListPodSandbox(ctx, nil); len(sbs) != 0 {
		t.Errorf("%d sandboxes left", len(sbs))
	}
	// Nothing left from the start: gone at once, with no CRI call but the
	// observation.
	cleanCalls(rt)
	if res, err := s.SyncPod(ctx, pod.UID); err != nil || !res.Gone {
		t.Errorf("sync of a pod with nothing left: %+v, %v; want gone", res, err)
	}
	if calls := rt.GetCalls(); !slices.Equal(calls, []string{"ListPodSandbox", "ListContainers"}) {
		t.Errorf("CRI calls %v, want the observation only", calls)
	}
}

// The sync removes the sandboxes the plan found old: not the newest, not
// one that holds a container. An ephemeral container's exited container
// keeps its sandbox, and it is still known as created: it never runs twice.
func TestSyncRemovesOldSandboxes(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	f := pt.CRI{Runtime: rt, Pod: pod}
	f.Sandbox("sb-old-empty", 0, false, t0)
	f.Sandbox("sb-old-debugged", 1, false, t0.Add(time.Minute))
	f.Container("e1", "sb-old-debugged", ephT, "debugger", exited, 0, t0.Add(time.Minute), 0)
	// A container the agent cannot read (no labels of its own but the pod
	// UID): the Observer leaves it out, the runtime still holds it.
	f.Sandbox("sb-old-foreign", 2, false, t0.Add(2*time.Minute))
	rt.Lock()
	rt.Containers["x1"] = &criapitesting.FakeContainer{SandboxID: "sb-old-foreign", ContainerStatus: runtimeapi.ContainerStatus{
		Id: "x1", State: exited, Metadata: &runtimeapi.ContainerMetadata{Name: "x1"}, Labels: map[string]string{criconfig.LabelPodUID: string(pod.UID)},
	}}
	rt.Unlock()
	f.Sandbox("sb-old-dead", 3, false, t0.Add(3*time.Minute))
	f.Sandbox("sb-ready", 4, true, t0.Add(4*time.Minute), "10.88.0.5")
	f.Container("c1", "sb-ready", regT, "app", running, 4, t0.Add(4*time.Minute), 0)

	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	var left []string
	sbs, _ := rt.ListPodSandbox(ctx, nil)
	for _, sb := range sbs {
		left = append(left, sb.Id)
	}
	slices.Sort(left)
	if want := []string{"sb-old-debugged", "sb-old-foreign", "sb-ready"}; !slices.Equal(left, want) {
		t.Errorf("sandboxes left %v, want %v", left, want)
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 1 {
		t.Errorf("%d debugger containers, want the exited one alone", n)
	}
	st, err := s.Observer.Observe(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if !podstate.EphemeralCreated(pod, st, "debugger") {
		t.Error("the debugger is no longer known as created")
	}
	// Nothing more to remove: the next sync removes nothing.
	cleanCalls(rt)
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	for _, c := range rt.GetCalls() {
		if c == "RemovePodSandbox" || c == "RemoveContainer" {
			t.Errorf("second sync called %s", c)
		}
	}
}
