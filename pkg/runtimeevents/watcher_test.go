package runtimeevents

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// fakeSink records what the watcher asks, one line per call.
type fakeSink struct {
	mu    sync.Mutex
	calls []string
	seen  map[string]types.UID
}

func (s *fakeSink) record(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *fakeSink) Enqueue(uid types.UID)    { s.record("enqueue " + string(uid)) }
func (s *fakeSink) Relist()                  { s.record("relist") }
func (s *fakeSink) Connected(connected bool) { s.record(fmt.Sprintf("connected %v", connected)) }
func (s *fakeSink) PodOf(id string) (types.UID, bool) {
	uid, ok := s.seen[id]
	return uid, ok
}

func (s *fakeSink) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// waitCalls waits until the sink got want, exactly.
// waitCallsAnyOrder is waitCalls for calls whose order may vary.
func (s *fakeSink) waitCallsAnyOrder(ctx context.Context, t *testing.T, want ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return len(s.get()) >= len(want), nil
	})
	got := slices.Sorted(slices.Values(s.get()))
	if err != nil || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("sink got %q, want %q in any order", s.get(), want)
	}
}

func (s *fakeSink) waitCalls(ctx context.Context, t *testing.T, want ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return len(s.get()) >= len(want), nil
	})
	if got := s.get(); err != nil || !slices.Equal(got, want) {
		t.Fatalf("sink got %q, want %q", got, want)
	}
}

// fakeRuntime is a CRI runtime whose container events the test feeds.
type fakeRuntime struct {
	*criapitesting.FakeRuntimeService
	// streams yields what each GetContainerEvents call does: events to
	// send, then the error to end with.
	streams chan criStream
	mu      sync.Mutex
	opened  int
}

type criStream struct {
	events []*runtimeapi.ContainerEventResponse
	err    error
}

func (r *fakeRuntime) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, _ func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	r.mu.Lock()
	r.opened++
	r.mu.Unlock()
	select {
	case s := <-r.streams:
		for _, ev := range s.events {
			ch <- ev
		}
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *fakeRuntime) openedStreams() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened
}

// unimplemented is what containerd 1.6 answers to GetContainerEvents.
var unimplemented = status.Error(codes.Unimplemented, "unknown method GetContainerEvents")

// fakeContainerd is containerd's event service; each subscription takes
// its events and its end from subs.
type fakeContainerd struct {
	subs    chan containerdSub
	mu      sync.Mutex
	filters [][]string
}

type containerdSub struct {
	events []*events.Envelope
	// failAtOnce fails the subscription itself (containerd down).
	failAtOnce bool
	err        error
}

func (c *fakeContainerd) Subscribe(ctx context.Context, filters ...string) (<-chan *events.Envelope, <-chan error) {
	c.mu.Lock()
	c.filters = append(c.filters, filters)
	c.mu.Unlock()
	evs := make(chan *events.Envelope)
	errs := make(chan error, 1)
	var sub containerdSub
	select {
	case sub = <-c.subs:
	case <-ctx.Done():
		errs <- ctx.Err()
		return evs, errs
	}
	if sub.failAtOnce {
		errs <- sub.err
		close(errs)
		return evs, errs
	}
	go func() {
		defer close(errs)
		for _, e := range sub.events {
			select {
			case evs <- e:
			case <-ctx.Done():
				return
			}
		}
		if sub.err != nil {
			errs <- sub.err
			return
		}
		<-ctx.Done()
		errs <- ctx.Err()
	}()
	return evs, errs
}

// envelope wraps a containerd event as its client delivers it.
func envelope(t *testing.T, topic string, ev any) *events.Envelope {
	t.Helper()
	a, err := typeurl.MarshalAny(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &events.Envelope{Namespace: DefaultNamespace, Topic: topic, Event: a}
}

// criContainer and criSandbox are objects of pod ("" for none).
func criContainer(id, pod string) *criapitesting.FakeContainer {
	c := &criapitesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
		Id: id, State: runtimeapi.ContainerState_CONTAINER_EXITED, Metadata: &runtimeapi.ContainerMetadata{Name: id}, Labels: map[string]string{},
	}}
	if pod != "" {
		c.Labels[criconfig.LabelPodUID] = pod
	}
	return c
}

func criSandbox(id, pod string) *criapitesting.FakePodSandbox {
	s := &criapitesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: id, State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, Metadata: &runtimeapi.PodSandboxMetadata{Name: id, Uid: pod}, Labels: map[string]string{},
	}}
	if pod != "" {
		s.Labels[criconfig.LabelPodUID] = pod
	}
	return s
}

func newFakeRuntime() *fakeRuntime {
	rt := &fakeRuntime{FakeRuntimeService: criapitesting.NewFakeRuntimeService(), streams: make(chan criStream, 10)}
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("new-debugger", "p2"), criContainer("foreign", "")})
	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{criSandbox("new-sandbox", "p3")})
	return rt
}

func TestContainerdTarget(t *testing.T) {
	for _, tc := range []struct {
		topic       string
		event       any
		wantID      string
		wantDeleted bool
		wantOK      bool
	}{
		{TopicTaskStart, &apievents.TaskStart{ContainerID: "c1", Pid: 10}, "c1", false, true},
		{TopicTaskExit, &apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 0}, "c1", false, true},
		{TopicTaskExit, &apievents.TaskExit{ContainerID: "c1"}, "c1", false, true},
		// A probe's or kubectl exec's process ended: nothing a sync sees.
		{TopicTaskExit, &apievents.TaskExit{ContainerID: "c1", ID: "exec-1"}, "c1", false, false},
		{TopicTaskOOM, &apievents.TaskOOM{ContainerID: "c1"}, "c1", false, true},
		{TopicTaskDelete, &apievents.TaskDelete{ContainerID: "c1", ID: "c1"}, "c1", true, true},
		{TopicTaskDelete, &apievents.TaskDelete{ContainerID: "c1", ID: "exec-1"}, "c1", true, false},
		{TopicContainerDelete, &apievents.ContainerDelete{ID: "c1"}, "c1", false, true},
		{"/tasks/paused", &apievents.TaskPaused{ContainerID: "c1"}, "", false, false},
		{"/images/create", &apievents.ImageCreate{Name: "busybox"}, "", false, false},
	} {
		t.Run(fmt.Sprintf("%s %T", tc.topic, tc.event), func(t *testing.T) {
			id, deleted, ok := containerdTarget(tc.event)
			if ok != tc.wantOK || (ok && (id != tc.wantID || deleted != tc.wantDeleted)) {
				t.Errorf("containerdTarget = %q, %v, %v; want %q, %v, %v", id, deleted, ok, tc.wantID, tc.wantDeleted, tc.wantOK)
			}
		})
	}
}

// A deleted task's sync waits until the CRI runtime records the exit:
// containerd publishes the deletion before its CRI plugin has.
func TestSettleWaitsForCRI(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := newFakeRuntime()
	running := criContainer("c1", "p1")
	running.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	rt.SetFakeContainers([]*criapitesting.FakeContainer{running})
	w := New(Options{Runtime: rt})
	settled := make(chan struct{})
	go func() { w.settle(ctx, "c1"); close(settled) }()
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return slices.Contains(rt.GetCalls(), "ListContainers"), nil
	}); err != nil {
		t.Fatal("settle asked nothing")
	}
	select {
	case <-settled:
		t.Fatal("settle returned while the container still ran")
	default:
	}
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("c1", "p1")})
	<-settled
	// A container the runtime does not know (a sandbox's ID) does not wait.
	w.settle(ctx, "unknown")
}

// watchContainerdEvents runs a watcher on a runtime without CRI events
// whose container "new-debugger" of pod p2 runs, and containerd events
// evs; the sink knows "old" as pod p1's. stop ends the watcher; it may
// be called again.
func watchContainerdEvents(ctx context.Context, t *testing.T, evs ...*events.Envelope) (w *Watcher, rt *fakeRuntime, sink *fakeSink, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	rt = newFakeRuntime()
	rt.streams <- criStream{err: unimplemented}
	running := criContainer("new-debugger", "p2")
	running.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	rt.SetFakeContainers([]*criapitesting.FakeContainer{running})
	cd := &fakeContainerd{subs: make(chan containerdSub, 1)}
	cd.subs <- containerdSub{events: evs}
	w = New(Options{Runtime: rt, Containerd: cd})
	sink = &fakeSink{seen: map[string]types.UID{"old": "p1"}}
	done := make(chan struct{})
	go func() { w.Run(ctx, sink); close(done) }()
	return w, rt, sink, func() { cancel(); <-done }
}

// A deleted task that waits for the CRI plugin does not hold back the
// events behind it: 20 exits at once under load would otherwise each wait
// for those before. A lookup is made once per ID.
func TestExitSettlesOffTheEventLoop(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	w, rt, sink, stop := watchContainerdEvents(ctx, t,
		envelope(t, TopicTaskDelete, &apievents.TaskDelete{ContainerID: "new-debugger", ID: "new-debugger"}),
		envelope(t, TopicTaskOOM, &apievents.TaskOOM{ContainerID: "old"}),
	)
	defer stop()
	sink.waitCalls(ctx, t, "connected true", "enqueue p1")
	rt.SetFakeContainers([]*criapitesting.FakeContainer{criContainer("new-debugger", "p2")})
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return slices.Contains(sink.get(), "enqueue p2"), nil
	}); err != nil {
		t.Fatalf("settled exit never enqueued its pod: %q", sink.get())
	}
	// Known now: no second lookup.
	w.resolve(ctx, sink, "new-debugger")
	if got := sink.get(); got[len(got)-1] != "enqueue p2" {
		t.Errorf("known ID not enqueued: %q", got)
	}
}

// An exit is announced to the observer (Exited) at once, with what the
// event says, and its pod synced without waiting for the CRI plugin; an
// OOM kill before it gives the reason; the container's removal drops it.
func TestExitAnnounced(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	at := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	w, _, sink, stop := watchContainerdEvents(ctx, t,
		envelope(t, TopicTaskOOM, &apievents.TaskOOM{ContainerID: "old"}),
		envelope(t, TopicTaskExit, &apievents.TaskExit{ContainerID: "old", ID: "old", ExitStatus: 137, ExitedAt: timestamppb.New(at)}),
		envelope(t, TopicTaskExit, &apievents.TaskExit{ContainerID: "new-debugger", ID: "new-debugger", ExitStatus: 3, ExitedAt: timestamppb.New(at)}),
		// An exec'd process: nothing announced.
		envelope(t, TopicTaskExit, &apievents.TaskExit{ContainerID: "other", ID: "exec-1", ExitStatus: 1}),
	)
	defer stop()
	// The container still runs for the CRI runtime: no wait for it.
	sink.waitCalls(ctx, t, "connected true", "enqueue p1", "enqueue p1", "enqueue p2")
	for _, tc := range []struct {
		id      string
		code    int32
		oom, ok bool
	}{
		{"old", 137, true, true},
		{"new-debugger", 3, false, true},
		{"other", 0, false, false},
	} {
		code, gotAt, oom, ok := w.Exited(tc.id)
		if ok != tc.ok || code != tc.code || oom != tc.oom || (ok && !gotAt.Equal(at)) {
			t.Errorf("Exited(%q) = %d, %v, %v, %v; want %d, %v, %v, %v", tc.id, code, gotAt, oom, ok, tc.code, at, tc.oom, tc.ok)
		}
	}
	stop()
	w.forget("old")
	if _, _, _, ok := w.Exited("old"); ok {
		t.Error("a removed container's exit is still announced")
	}
}

func TestCRIEventWanted(t *testing.T) {
	for typ, want := range map[runtimeapi.ContainerEventType]bool{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT: false,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT: true,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT: true,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT: true,
	} {
		if got := criEventWanted(typ); got != want {
			t.Errorf("criEventWanted(%v) = %v, want %v", typ, got, want)
		}
	}
}

// An ID maps to its pod from the last relist, else from the runtime's
// labels (a container or sandbox created since), else it asks a relist.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		want []string
	}{
		{"seen by the last relist", "old", []string{"enqueue p1"}},
		{"container created since", "new-debugger", []string{"enqueue p2"}},
		{"sandbox created since", "new-sandbox", []string{"enqueue p3"}},
		{"not the agent's", "foreign", nil},
		{"unknown to the runtime", "gone", []string{"relist"}},
		{"no ID", "", []string{"relist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			w := New(Options{Runtime: newFakeRuntime()})
			sink := &fakeSink{seen: map[string]types.UID{"old": "p1"}}
			w.resolve(ctx, sink, tc.id)
			if got := sink.get(); !slices.Equal(got, tc.want) {
				t.Errorf("sink got %q, want %q", got, tc.want)
			}
		})
	}
}

// A runtime that serves CRI events: each asks for its pod's sync by the
// sandbox's labels; the stream counts as connected at its first event.
func TestRunCRIEvents(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt := newFakeRuntime()
	sandbox := &runtimeapi.PodSandboxStatus{Id: "s1", Labels: map[string]string{criconfig.LabelPodUID: "p1"}}
	rt.streams <- criStream{events: []*runtimeapi.ContainerEventResponse{
		{ContainerId: "c1", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, PodSandboxStatus: sandbox},
		{ContainerId: "c1", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, PodSandboxStatus: sandbox},
		// No sandbox status: the container's labels tell.
		{ContainerId: "new-debugger", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
	}, err: status.Error(codes.Unavailable, "runtime restarted")}
	reg := prometheus.NewPedanticRegistry()
	w := New(Options{Runtime: rt, Containerd: &fakeContainerd{}, Registerer: reg, Backoff: wait.Backoff{Duration: time.Millisecond, Cap: time.Millisecond, Steps: 1}})
	sink := &fakeSink{}
	go w.Run(ctx, sink)
	sink.waitCalls(ctx, t, "connected true", "enqueue p1", "enqueue p2", "connected false")
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return rt.openedStreams() == 2, nil
	}); err != nil {
		t.Error("broken CRI stream not reopened")
	}
	if got := testutil.ToFloat64(w.metrics.events.WithLabelValues(SourceCRI, "CONTAINER_STOPPED_EVENT")); got != 2 {
		t.Errorf("events counted %v, want 2", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

// A runtime without CRI events (containerd 1.6) is asked once; containerd's
// events take over, and every (re)connection tells the sink once, so it
// relists once; a subscription that fails waits for the next attempt.
func TestRunFallsBackToContainerd(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt := newFakeRuntime()
	rt.streams <- criStream{err: unimplemented}
	cd := &fakeContainerd{subs: make(chan containerdSub, 10)}
	cd.subs <- containerdSub{events: []*events.Envelope{
		envelope(t, TopicTaskExit, &apievents.TaskExit{ContainerID: "old", ID: "old"}),
		envelope(t, TopicTaskExit, &apievents.TaskExit{ContainerID: "old", ID: "exec-1"}),
		envelope(t, TopicTaskStart, &apievents.TaskStart{ContainerID: "new-debugger"}),
		envelope(t, TopicContainerDelete, &apievents.ContainerDelete{ID: "gone"}),
	}, err: status.Error(codes.Unavailable, "containerd restarted")}
	cd.subs <- containerdSub{failAtOnce: true, err: status.Error(codes.Unavailable, "connection refused")}
	cd.subs <- containerdSub{events: []*events.Envelope{
		envelope(t, TopicTaskOOM, &apievents.TaskOOM{ContainerID: "old"}),
	}}
	reg := prometheus.NewPedanticRegistry()
	w := New(Options{Runtime: rt, Containerd: cd, Registerer: reg, Backoff: wait.Backoff{Duration: time.Millisecond, Cap: time.Millisecond, Steps: 1}})
	sink := &fakeSink{seen: map[string]types.UID{"old": "p1"}}
	done := make(chan struct{})
	go func() { w.Run(ctx, sink); close(done) }()
	// Exits settle off the event loop: their pods may come in any order
	// with the other events of their stream.
	sink.waitCallsAnyOrder(ctx, t,
		"connected true", "enqueue p1", "enqueue p2", "relist", "connected false",
		"connected true", "enqueue p1")
	cancel()
	<-done
	if got := sink.get(); got[len(got)-1] != "connected false" {
		t.Errorf("sink not told the stream ended with the watcher: %q", got)
	}
	if got := rt.openedStreams(); got != 1 {
		t.Errorf("GetContainerEvents asked %d times, want once", got)
	}
	if got := testutil.ToFloat64(w.metrics.connects.WithLabelValues(SourceContainerd)); got != 2 {
		t.Errorf("connects counted %v, want 2", got)
	}
	if got := testutil.ToFloat64(w.metrics.events.WithLabelValues(SourceContainerd, TopicTaskExit)); got != 2 {
		t.Errorf("exits counted %v, want 2", got)
	}
	want := filters(DefaultNamespace)
	if len(cd.filters) != 3 || !slices.Equal(cd.filters[0], want) {
		t.Errorf("subscriptions with filters %q, want 3 with %q", cd.filters, want)
	}
}

// A socket that serves neither kind of events leaves the relist alone.
func TestRunNoSource(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := newFakeRuntime()
	rt.streams <- criStream{err: unimplemented}
	cd := &fakeContainerd{subs: make(chan containerdSub, 1)}
	cd.subs <- containerdSub{failAtOnce: true, err: unimplemented}
	sink := &fakeSink{}
	New(Options{Runtime: rt, Containerd: cd}).Run(ctx, sink)
	if got := sink.get(); len(got) != 0 {
		t.Errorf("sink got %q, want nothing", got)
	}
}

func TestFilters(t *testing.T) {
	got := filters("k8s.io")
	if want := `namespace=="k8s.io",topic=="/tasks/exit"`; !slices.Contains(got, want) {
		t.Errorf("filters %q lack %q", got, want)
	}
	if len(got) != 5 {
		t.Errorf("%d filters, want one per topic", len(got))
	}
}
