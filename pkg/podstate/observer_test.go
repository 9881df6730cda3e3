package podstate_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// callsTo counts the runtime's calls of one method so far.
func callsTo(rt *criapitesting.FakeRuntimeService, method string) int {
	n := 0
	for _, c := range rt.GetCalls() {
		if c == method {
			n++
		}
	}
	return n
}

func sandboxIDs(s *podstate.PodState) []string {
	var out []string
	for _, sb := range s.Sandboxes {
		out = append(out, sb.ID)
	}
	return out
}

func containerIDs(s *podstate.PodState) []string {
	var out []string
	for _, c := range s.Containers {
		out = append(out, c.ID)
	}
	return out
}

func TestObserverOnlyThePodsObjects(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod()
	other := pt.Pod(func(p *v1.Pod) { p.Name, p.UID = "other", "uid-2" })
	mine, theirs := pt.CRI{Runtime: rt, Pod: pod}, pt.CRI{Runtime: rt, Pod: other}
	mine.Sandbox("sb-mine", 0, true, pt.T0, "10.88.0.2")
	mine.Container("c-mine", "sb-mine", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	theirs.Sandbox("sb-theirs", 0, true, pt.T0, "10.88.0.3")
	theirs.Container("c-theirs", "sb-theirs", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	// Labelled with the pod's UID but not by the agent (no container
	// name): not the pod's.
	stray := mine.Container("c-stray", "sb-mine", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	delete(stray.Labels, criconfig.LabelContainerName)
	// Without any label at all.
	rt.Sandboxes["sb-bare"] = &criapitesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{Id: "sb-bare", State: runtimeapi.PodSandboxState_SANDBOX_READY}}
	rt.Containers["c-bare"] = &criapitesting.FakeContainer{SandboxID: "sb-bare", ContainerStatus: runtimeapi.ContainerStatus{Id: "c-bare", State: pt.Running}}

	st, err := podstate.NewObserver(rt).Observe(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sandboxIDs(st), []string{"sb-mine"}; !slices.Equal(got, want) {
		t.Errorf("sandboxes %v, want %v", got, want)
	}
	if got, want := containerIDs(st), []string{"c-mine"}; !slices.Equal(got, want) {
		t.Errorf("containers %v, want %v", got, want)
	}
}

func TestObserverContainerFields(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"), func(p *v1.Pod) {
		p.Spec.InitContainers[0].TerminationMessagePath = "/dev/termination-log"
		p.Spec.InitContainers[0].TerminationMessagePolicy = v1.TerminationMessageFallbackToLogsOnError
	})
	f := pt.CRI{Runtime: rt, Pod: pod}
	f.Sandbox("sb1", 0, true, pt.T0)
	setup := f.Container("c-setup", "sb1", pt.Init, "setup", pt.Exited, 0, pt.T0, 2)
	setup.Reason, setup.Message = "Error", "exit status 2"
	f.Container("c-app", "sb1", pt.Regular, "app", pt.Running, 3, pt.T0.Add(time.Minute), 0)
	// A runtime that predates CRI's user_specified_image reports the
	// spec's image only on the listed container.
	dbg := f.Container("c-debug", "sb1", pt.Ephemeral, "debug", pt.Created, 0, pt.T0.Add(2*time.Minute), 0)
	dbg.Image = &runtimeapi.ImageSpec{Image: "localhost/busybox:test"}

	st, err := podstate.NewObserver(rt).Observe(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	want := []podstate.Container{
		{
			ID: "c-debug", SandboxID: "sb1", Name: "debug", Type: pt.Ephemeral, Attempt: 0,
			Hash: criconfig.HashContainer(podstate.ContainerSpec(pod, pt.Ephemeral, "debug")), State: pt.Created,
			Image: "localhost/busybox:test", ImageRef: "sha256:0123", CreatedAt: pt.T0.Add(2 * time.Minute),
			LogPath: "/var/log/pods/c-debug.log",
		},
		{
			ID: "c-app", SandboxID: "sb1", Name: "app", Type: pt.Regular, Attempt: 3,
			Hash: criconfig.HashContainer(&pod.Spec.Containers[0]), State: pt.Running,
			Image: "localhost/distroless-app:test", ImageRef: "sha256:0123",
			CreatedAt: pt.T0.Add(time.Minute), StartedAt: pt.T0.Add(time.Minute),
			LogPath: "/var/log/pods/c-app.log",
		},
		{
			ID: "c-setup", SandboxID: "sb1", Name: "setup", Type: pt.Init, Attempt: 0,
			Hash: criconfig.HashContainer(&pod.Spec.InitContainers[0]), State: pt.Exited,
			Image: "localhost/busybox:test", ImageRef: "sha256:0123",
			CreatedAt: pt.T0, StartedAt: pt.T0, FinishedAt: pt.T0.Add(time.Second), ExitCode: 2,
			// No termination message file, no log file to fall back
			// on: the runtime's message.
			Reason: "Error", Message: "exit status 2",
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: string(v1.TerminationMessageFallbackToLogsOnError),
			LogPath: "/var/log/pods/c-setup.log",
		},
	}
	if len(st.Containers) != len(want) {
		t.Fatalf("containers %v, want %d", containerIDs(st), len(want))
	}
	for i := range want {
		got := st.Containers[i]
		// Times come back from Unix nanoseconds in the local zone.
		for _, tm := range []*time.Time{&got.CreatedAt, &got.StartedAt, &got.FinishedAt} {
			if !tm.IsZero() {
				*tm = tm.UTC()
			}
		}
		if got != want[i] {
			t.Errorf("container %d =\n  %+v\nwant\n  %+v", i, got, want[i])
		}
	}
}

func TestObserverSortsNewestFirst(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod()
	f := pt.CRI{Runtime: rt, Pod: pod}
	f.Sandbox("sb-0", 0, false, pt.T0)
	f.Sandbox("sb-2", 2, true, pt.T0.Add(2*time.Minute))
	f.Sandbox("sb-1", 1, false, pt.T0.Add(time.Minute))
	// Same creation time: the higher attempt is the newer.
	f.Sandbox("sb-1b", 5, false, pt.T0.Add(time.Minute))
	f.Container("c-mid", "sb-2", pt.Regular, "app", pt.Exited, 1, pt.T0.Add(3*time.Minute), 1)
	f.Container("c-new", "sb-2", pt.Regular, "app", pt.Running, 2, pt.T0.Add(4*time.Minute), 0)
	f.Container("c-old", "sb-1", pt.Regular, "app", pt.Exited, 0, pt.T0.Add(90*time.Second), 1)

	st, err := podstate.NewObserver(rt).Observe(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sandboxIDs(st), []string{"sb-2", "sb-1b", "sb-1", "sb-0"}; !slices.Equal(got, want) {
		t.Errorf("sandboxes %v, want %v", got, want)
	}
	if got, want := containerIDs(st), []string{"c-new", "c-mid", "c-old"}; !slices.Equal(got, want) {
		t.Errorf("containers %v, want %v", got, want)
	}
}

func TestObserverSandboxIPs(t *testing.T) {
	type sb struct {
		id    string
		ready bool
		ips   []string
	}
	for _, tc := range []struct {
		name string
		// sandboxes, oldest first
		sandboxes []sb
		wantIPs   map[string][]string // by sandbox ID; absent for none
		// wantStatus is whether PodSandboxStatus is called: only for the
		// newest sandbox, when it is ready.
		wantStatus bool
	}{
		{
			name:       "newest ready: its addresses, primary first",
			sandboxes:  []sb{{"old", false, []string{"10.0.0.1"}}, {"new", true, []string{"10.0.0.2", "fd00::2"}}},
			wantIPs:    map[string][]string{"new": {"10.0.0.2", "fd00::2"}},
			wantStatus: true,
		},
		{
			name:      "newest stopped: no addresses, even of an older ready one",
			sandboxes: []sb{{"old", true, []string{"10.0.0.1"}}, {"new", false, []string{"10.0.0.2"}}},
		},
		{
			name:       "host network: no addresses of its own",
			sandboxes:  []sb{{"new", true, nil}},
			wantStatus: true,
		},
		{
			name: "no sandbox",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			rt := criapitesting.NewFakeRuntimeService()
			pod := pt.Pod()
			f := pt.CRI{Runtime: rt, Pod: pod}
			for i, s := range tc.sandboxes {
				f.Sandbox(s.id, uint32(i), s.ready, pt.T0.Add(time.Duration(i)*time.Minute), s.ips...)
			}
			st, err := podstate.NewObserver(rt).Observe(ctx, pod.UID)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.Sandboxes {
				if want := tc.wantIPs[s.ID]; !slices.Equal(s.IPs, want) {
					t.Errorf("sandbox %s IPs %v, want %v", s.ID, s.IPs, want)
				}
			}
			want := 0
			if tc.wantStatus {
				want = 1
			}
			if n := callsTo(rt, "PodSandboxStatus"); n != want {
				t.Errorf("PodSandboxStatus called %d times, want %d", n, want)
			}
		})
	}
}

func TestObserverCachesContainerStatus(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod(pt.WithSidecar("proxy"))
	other := pt.Pod(func(p *v1.Pod) { p.Name, p.UID = "other", "uid-2" })
	f, g := pt.CRI{Runtime: rt, Pod: pod}, pt.CRI{Runtime: rt, Pod: other}
	f.Sandbox("sb1", 0, true, pt.T0, "10.88.0.2")
	app := f.Container("c-app", "sb1", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	f.Container("c-proxy", "sb1", pt.Init, "proxy", pt.Exited, 0, pt.T0, 1)
	g.Sandbox("sb2", 0, true, pt.T0, "10.88.0.3")
	g.Container("c-other", "sb2", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	obs := podstate.NewObserver(rt)

	// observe returns the pod's state and how many ContainerStatus calls
	// reading it took.
	observe := func(uid types.UID) (*podstate.PodState, int) {
		t.Helper()
		before := callsTo(rt, "ContainerStatus")
		st, err := obs.Observe(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		return st, callsTo(rt, "ContainerStatus") - before
	}
	stateOf := func(st *podstate.PodState, id string) *podstate.Container {
		for i := range st.Containers {
			if st.Containers[i].ID == id {
				return &st.Containers[i]
			}
		}
		t.Fatalf("container %s missing from %v", id, containerIDs(st))
		return nil
	}

	if _, n := observe(pod.UID); n != 2 {
		t.Errorf("first observation: %d ContainerStatus calls, want 2", n)
	}
	if _, n := observe(pod.UID); n != 0 {
		t.Errorf("nothing changed: %d ContainerStatus calls, want 0", n)
	}

	rt.Lock()
	app.State, app.FinishedAt, app.ExitCode = pt.Exited, pt.T0.Add(time.Hour).UnixNano(), 137
	rt.Unlock()
	st, n := observe(pod.UID)
	if n != 1 {
		t.Errorf("one container exited: %d ContainerStatus calls, want 1", n)
	}
	if c := stateOf(st, "c-app"); c.State != pt.Exited || c.ExitCode != 137 {
		t.Errorf("exited container read as %v exit %d, want exited 137", c.State, c.ExitCode)
	}

	// Another pod's observation keeps this pod's cache.
	if _, n := observe(other.UID); n != 1 {
		t.Errorf("other pod: %d ContainerStatus calls, want 1", n)
	}
	if _, n := observe(pod.UID); n != 0 {
		t.Errorf("after the other pod's observation: %d ContainerStatus calls, want 0", n)
	}

	// A container that vanished is forgotten: should its ID come back, it
	// is read again rather than answered from a stale entry.
	rt.Lock()
	proxy := rt.Containers["c-proxy"]
	delete(rt.Containers, "c-proxy")
	rt.Unlock()
	if st, n := observe(pod.UID); n != 0 || len(st.Containers) != 1 {
		t.Errorf("after a removal: %d ContainerStatus calls, containers %v; want 0, [c-app]", n, containerIDs(st))
	}
	rt.Lock()
	proxy.ExitCode = 3
	rt.Containers["c-proxy"] = proxy
	rt.Unlock()
	st, n = observe(pod.UID)
	if n != 1 {
		t.Errorf("container back under the same ID: %d ContainerStatus calls, want 1", n)
	}
	if c := stateOf(st, "c-proxy"); c.ExitCode != 3 {
		t.Errorf("exit code %d read from a stale cache entry, want 3", c.ExitCode)
	}
}

func TestObserverErrors(t *testing.T) {
	for _, method := range []string{"ListPodSandbox", "ListContainers", "PodSandboxStatus", "ContainerStatus"} {
		t.Run(method, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			rt := criapitesting.NewFakeRuntimeService()
			pod := pt.Pod()
			f := pt.CRI{Runtime: rt, Pod: pod}
			f.Sandbox("sb1", 0, true, pt.T0, "10.88.0.2")
			f.Container("c1", "sb1", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
			injected := errors.New("runtime unavailable")
			rt.InjectError(method, injected)
			// An unreadable runtime is an unknown state, never an empty
			// one: the sync loop must not take it for a pod with nothing.
			st, err := podstate.NewObserver(rt).Observe(ctx, pod.UID)
			if !errors.Is(err, injected) || st != nil {
				t.Errorf("Observe = %v, %v; want nil and the runtime's error", st, err)
			}
		})
	}
}

// exits is an ExitSource that knows the exits in it.
type exits map[string]struct {
	code int32
	oom  bool
}

func (e exits) Exited(id string) (int32, time.Time, bool, bool) {
	x, ok := e[id]
	return x.code, pt.T0.Add(time.Hour), x.oom, ok
}

// An ephemeral container the runtime still lists running but whose exit
// the runtime announced is reported exited, as the runtime will report it:
// its reason by the runtime's rules, its termination message file read, no
// log tail yet. What the runtime itself reports exited stays as it reports
// it, and a regular container stays running until the runtime says it
// exited.
func TestObserverAnnouncedExits(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod(pt.WithEphemeral("app", "ok", "fail", "oom", "quiet", "done"), func(p *v1.Pod) {
		for i := range p.Spec.EphemeralContainers {
			c := &p.Spec.EphemeralContainers[i]
			c.TerminationMessagePath = "/dev/termination-log"
			c.TerminationMessagePolicy = v1.TerminationMessageFallbackToLogsOnError
		}
	})
	msg := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(msg, []byte("bye"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := pt.CRI{Runtime: rt, Pod: pod}
	f.Sandbox("sb1", 0, true, pt.T0)
	f.Container("c-app", "sb1", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
	okc := f.Container("c-ok", "sb1", pt.Ephemeral, "ok", pt.Running, 0, pt.T0, 0)
	okc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: msg}}
	f.Container("c-fail", "sb1", pt.Ephemeral, "fail", pt.Running, 0, pt.T0, 0)
	f.Container("c-oom", "sb1", pt.Ephemeral, "oom", pt.Running, 0, pt.T0, 0)
	f.Container("c-quiet", "sb1", pt.Ephemeral, "quiet", pt.Running, 0, pt.T0, 0)
	done := f.Container("c-done", "sb1", pt.Ephemeral, "done", pt.Exited, 0, pt.T0, 5)
	done.Reason, done.Message = "Error", "from the runtime"

	// The app's exit is announced too, but only the runtime's word restarts
	// a regular container.
	src := exits{"c-app": {code: 1}, "c-ok": {code: 0}, "c-fail": {code: 2}, "c-oom": {code: 137, oom: true}, "c-done": {code: 9}}
	st, err := podstate.NewObserver(rt, podstate.WithExits(src)).Observe(ctx, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		state  runtimeapi.ContainerState
		code   int32
		reason string
		msg    string
	}{
		{"app", pt.Running, 0, "", ""},
		{"ok", pt.Exited, 0, podstate.ReasonCompleted, "bye"},
		{"fail", pt.Exited, 2, podstate.ReasonError, ""},
		{"oom", pt.Exited, 137, podstate.ReasonOOMKilled, ""},
		{"quiet", pt.Running, 0, "", ""},
		{"done", pt.Exited, 5, "Error", "from the runtime"},
	} {
		typ := pt.Ephemeral
		if tc.name == "app" {
			typ = pt.Regular
		}
		c := st.Latest(typ, tc.name)
		if c == nil {
			t.Fatalf("%s: not observed", tc.name)
		}
		if c.State != tc.state || c.ExitCode != tc.code || c.Reason != tc.reason || c.Message != tc.msg {
			t.Errorf("%s: %v exit %d reason %q message %q; want %v exit %d reason %q message %q",
				tc.name, c.State, c.ExitCode, c.Reason, c.Message, tc.state, tc.code, tc.reason, tc.msg)
		}
		if _, announced := src[c.ID]; announced && tc.state == pt.Exited && tc.name != "done" {
			if want := pt.T0.Add(time.Hour); !c.FinishedAt.Equal(want) {
				t.Errorf("%s: finished at %v, want the announced %v", tc.name, c.FinishedAt, want)
			}
		}
	}
}

// A ready sandbox's addresses are asked for once: they never change. A
// newer sandbox of the pod is asked about again.
func TestObserverAsksSandboxAddressesOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := criapitesting.NewFakeRuntimeService()
	pod := pt.Pod()
	f := pt.CRI{Runtime: rt, Pod: pod}
	f.Sandbox("sb1", 0, true, pt.T0, "10.0.0.1")
	o := podstate.NewObserver(rt)
	for i, want := range []struct {
		ips   []string
		calls int
	}{{[]string{"10.0.0.1"}, 1}, {[]string{"10.0.0.1"}, 1}, {[]string{"10.0.0.2"}, 2}, {[]string{"10.0.0.2"}, 2}} {
		if i == 2 {
			rt.Sandboxes["sb1"].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
			f.Sandbox("sb2", 1, true, pt.T0.Add(time.Minute), "10.0.0.2")
		}
		st, err := o.Observe(ctx, pod.UID)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.LatestSandbox().IPs; !slices.Equal(got, want.ips) {
			t.Errorf("observation %d: IPs %v, want %v", i, got, want.ips)
		}
		if n := callsTo(rt, "PodSandboxStatus"); n != want.calls {
			t.Errorf("observation %d: PodSandboxStatus called %d times in all, want %d", i, n, want.calls)
		}
	}
}
