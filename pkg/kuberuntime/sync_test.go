package kuberuntime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

type fakePods struct{ pod *v1.Pod }

func (f fakePods) GetPodByUID(uid types.UID) (*v1.Pod, bool) {
	return f.pod, f.pod != nil && f.pod.UID == uid
}

// fakeImages fails for the images in missing with ErrImageNeverPull.
type fakeImages struct{ missing map[string]bool }

type reasoned struct{ reason, msg string }

func (r reasoned) Error() string  { return r.msg }
func (r reasoned) Reason() string { return r.reason }

func (f fakeImages) EnsureImage(_ context.Context, _ *v1.ObjectReference, _ *v1.Pod, image string, _ v1.PullPolicy, _ []v1.Secret, _ *runtimeapi.PodSandboxConfig) (string, error) {
	if f.missing[image] {
		return "", reasoned{"ErrImageNeverPull", `Container image "` + image + `" is not present with pull policy of Never`}
	}
	return image, nil
}
func (fakeImages) ImageUser(context.Context, string) (*int64, string, error) { return nil, "", nil }
func (fakeImages) ForgetPod(types.UID)                                       {}

type fakeVolumes struct{ err error }

func (f fakeVolumes) SetUp(context.Context, *v1.Pod) (Mounter, error) { return noMounter{}, f.err }
func (fakeVolumes) TearDown(context.Context, types.UID) error         { return nil }

type noMounter struct{}

func (noMounter) MountsWithEnv(*v1.Container, map[string]string) ([]*runtimeapi.Mount, error) {
	return nil, nil
}

type fakeSecrets struct{}

func (fakeSecrets) ConfigMap(context.Context, string, string) (*v1.ConfigMap, error) {
	return nil, errors.New("no")
}
func (fakeSecrets) Secret(context.Context, string, string) (*v1.Secret, error) {
	return nil, errors.New("no")
}

// recordingStatus keeps the last waiting reasons it was given.
type recordingStatus struct {
	waiting map[podstate.ContainerKey]podstate.Waiting
}

func (r *recordingStatus) SetPodStatus(_ *v1.Pod, _ *podstate.PodState, w map[podstate.ContainerKey]podstate.Waiting) {
	r.waiting = w
}
func (r *recordingStatus) DeletePod(context.Context, *v1.Pod) error { return nil }
func (r *recordingStatus) ForgetPod(types.UID)                      {}

func newTestSyncer(t *testing.T, pod *v1.Pod, images fakeImages, vols fakeVolumes) (*Syncer, *criapitesting.FakeRuntimeService, *recordingStatus, *record.FakeRecorder) {
	t.Helper()
	rt := criapitesting.NewFakeRuntimeService()
	st := &recordingStatus{}
	rec := record.NewFakeRecorder(100)
	dir := t.TempDir()
	s := NewSyncer(Config{PodLogsDir: dir + "/logs", RootDir: dir}, Deps{
		Runtime: rt, Pods: fakePods{pod}, Images: images, Volumes: vols, Secrets: fakeSecrets{},
		Status: st, Recorder: rec, Clock: clocktesting.NewFakeClock(t0),
		Records: podstate.NewRecordStore(dir + "/pods"),
	})
	return s, rt, st, rec
}

func containersNamed(t *testing.T, rt *criapitesting.FakeRuntimeService, name string) []*runtimeapi.Container {
	t.Helper()
	cs, err := rt.ListContainers(context.Background(), &runtimeapi.ContainerFilter{LabelSelector: map[string]string{criconfig.LabelContainerName: name}})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestSyncVolumeFailureStartsNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{err: errors.New("disk on fire")})
	if _, err := s.SyncPod(ctx, pod.UID); err == nil {
		t.Fatal("sync succeeded with volumes failing")
	}
	if n := len(containersNamed(t, rt, "app")); n != 0 {
		t.Errorf("%d containers started without their volumes", n)
	}
	select {
	case e := <-rec.Events:
		if e != "Warning FailedMount disk on fire" {
			t.Errorf("event = %q", e)
		}
	default:
		t.Error("no FailedMount event")
	}
}

func TestSyncOneFailureDoesNotBlockOthers(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "sidecar", Image: "localhost/missing:none"})
	})
	s, rt, st, _ := newTestSyncer(t, pod, fakeImages{missing: map[string]bool{"localhost/missing:none": true, "localhost/gone:none": true}}, fakeVolumes{})
	if _, err := s.SyncPod(ctx, pod.UID); !errors.Is(err, errRetry) {
		t.Fatalf("sync error = %v, want a retry", err)
	}
	if n := len(containersNamed(t, rt, "app")); n != 1 {
		t.Errorf("app: %d containers, want 1 despite the sidecar's failure", n)
	}
	if w := st.waiting[podstate.ContainerKey{Type: regT, Name: "sidecar"}]; w.Reason != "ErrImageNeverPull" {
		t.Errorf("sidecar waiting = %+v", w)
	}

	// An ephemeral container whose image is missing fails alone, and one
	// whose target is fine starts beside it.
	withEphemeral("broken", "app")(pod)
	pod.Spec.EphemeralContainers[0].Image = "localhost/gone:none"
	withEphemeral("debugger", "app")(pod)
	if _, err := s.SyncPod(ctx, pod.UID); !errors.Is(err, errRetry) {
		t.Fatalf("sync error = %v, want a retry", err)
	}
	if w := st.waiting[podstate.ContainerKey{Type: ephT, Name: "broken"}]; w.Reason != "ErrImageNeverPull" {
		t.Errorf("broken debugger waiting = %+v", w)
	}
	dbg := containersNamed(t, rt, "debugger")
	if len(dbg) != 1 || dbg[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("debugger containers = %v, want one running", dbg)
	}

	// Exactly once: more syncs start no second debugger, even after it exits.
	if err := rt.StopContainer(ctx, dbg[0].Id, 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = s.SyncPod(ctx, pod.UID)
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 1 {
		t.Errorf("debugger: %d containers after it exited, want still 1", n)
	}
}

func TestSyncEphemeralTargetMissing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	// The target is an init container that has not run yet: the pod's
	// first init container blocks it.
	pod := testPod(withInit("first", "target"), withEphemeral("debugger", "target"))
	s, rt, st, _ := newTestSyncer(t, pod, fakeImages{missing: map[string]bool{}}, fakeVolumes{})
	_, _ = s.SyncPod(ctx, pod.UID) // sandbox and the first init container
	_, _ = s.SyncPod(ctx, pod.UID) // the debugger, whose target has no container yet
	w := st.waiting[podstate.ContainerKey{Type: ephT, Name: "debugger"}]
	if w.Reason != ReasonCreateContainerConfigError || w.Message != "unable to find target container target" {
		t.Errorf("debugger waiting = %+v", w)
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 0 {
		t.Errorf("%d debugger containers created without their target", n)
	}
}

func TestHasPod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	if !s.HasPod(ctx, pod.UID) {
		t.Error("a pod in the API is not reported")
	}
	if s.HasPod(ctx, "gone") {
		t.Error("a pod neither in the API nor in the runtime is reported")
	}
	// Deleted from the API while the agent was down, its sandbox remains:
	// its sync still has to remove it, so its volumes stay until then.
	rt.SetFakeSandboxes([]*criapitesting.FakePodSandbox{{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, Labels: map[string]string{criconfig.LabelPodUID: "gone"},
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "gone", Namespace: "default", Uid: "gone"},
	}}})
	if !s.HasPod(ctx, "gone") {
		t.Error("a pod whose sandbox remains is not reported")
	}
	rt.InjectError("ListPodSandbox", errors.New("runtime down"))
	if !s.HasPod(ctx, "other") {
		t.Error("with the runtime unreadable, a pod is reported gone")
	}
}

// eventsWith drains rec and returns the events that contain reason.
func eventsWith(rec *record.FakeRecorder, reason string) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			if strings.Contains(e, " "+reason+" ") {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

func TestSyncEphemeralLostIsNeverCreatedAgain(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	_, _ = s.SyncPod(ctx, pod.UID) // sandbox and app
	_, _ = s.SyncPod(ctx, pod.UID) // the debugger
	dbg := containersNamed(t, rt, "debugger")
	if len(dbg) != 1 {
		t.Fatalf("%d debugger containers, want 1", len(dbg))
	}
	records, err := s.Records.List(pod.UID)
	if err != nil || records["debugger"].ContainerID != dbg[0].Id {
		t.Fatalf("records = %+v, %v; want the debugger's container %s", records, err, dbg[0].Id)
	}

	// Removed behind the agent's back (crictl rm, kubernetes#124176).
	if err := rt.RemoveContainer(ctx, dbg[0].Id); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = s.SyncPod(ctx, pod.UID)
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 0 {
		t.Errorf("%d debugger containers after the runtime lost it, want 0: it ran twice", n)
	}
	if lost := eventsWith(rec, ReasonContainerLost); len(lost) != 1 {
		t.Errorf("ContainerLost events = %q, want exactly one", lost)
	}
}

// failStart ends the only container named name in the fake runtime as
// containerd ends a start that failed: exited, never started, exit code
// 128, reason StartError with the runtime's message.
func failStart(t *testing.T, rt *criapitesting.FakeRuntimeService, name, message string) {
	t.Helper()
	cs := containersNamed(t, rt, name)
	if len(cs) != 1 {
		t.Fatalf("%d %s containers, want 1", len(cs), name)
	}
	rt.Lock()
	defer rt.Unlock()
	c := rt.Containers[cs[0].Id]
	c.State, c.StartedAt, c.ExitCode = runtimeapi.ContainerState_CONTAINER_EXITED, 0, 128
	c.Reason, c.Message = "StartError", message
}

func TestSyncEphemeralAbortedStartIsReplacedOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	_, _ = s.SyncPod(ctx, pod.UID)
	_, _ = s.SyncPod(ctx, pod.UID)
	abort := func() {
		t.Helper()
		// What containerd leaves when the agent dies during StartContainer.
		failStart(t, rt, "debugger", "failed to create containerd task: failed to create shim task: context canceled: unknown")
	}
	for i := 1; i <= podstate.MaxReplacements+1; i++ {
		abort()
		_, _ = s.SyncPod(ctx, pod.UID)
		dbg := containersNamed(t, rt, "debugger")
		if len(dbg) != 1 {
			t.Fatalf("after abort %d: %d debugger containers, want 1", i, len(dbg))
		}
		// The fake runtime names containers by their metadata, so the
		// replacement has the old ID: it shows as running again.
		replaced := dbg[0].State == runtimeapi.ContainerState_CONTAINER_RUNNING
		if want := i <= podstate.MaxReplacements; replaced != want {
			t.Errorf("after abort %d: replaced = %v, want %v", i, replaced, want)
		}
		records, _ := s.Records.List(pod.UID)
		if got, want := records["debugger"].Replacements, min(i, podstate.MaxReplacements); got != want {
			t.Errorf("after abort %d: %d replacements recorded, want %d", i, got, want)
		}
	}
}

// TestSyncEphemeralStartInterruptedIsReplaced: a debugger's start is
// interrupted (the runtime goes away during StartContainer, as in a
// restart; or the start is left undone and the next sync resumes the
// CREATED container, as after the agent's death); the start after that
// fails while creating the task, on the remains of the interrupted one.
// The command never ran, so the debugger is created again, once; the same
// failure of a first start is the container's own, and final.
func TestSyncEphemeralStartInterruptedIsReplaced(t *testing.T) {
	const remains = "failed to create containerd task: failed to create shim task: failed to start io pipe copy: " +
		"unable to copy pipes: containerd-shim: opening file \"/run/containerd/io/1-stdout\" failed: no such file or directory: unknown"
	for _, tc := range []struct {
		name string
		// interruption fails the first StartContainer; nil for none.
		interruption error
		replaced     bool
	}{
		{"runtime went away", status.Error(codes.Unavailable, "error reading from server: EOF"), true},
		{"start resumed", errors.New("the agent died before the runtime answered"), true},
		{"first start", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := testPod()
			s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
			_, _ = s.SyncPod(ctx, pod.UID)
			_, _ = s.SyncPod(ctx, pod.UID)
			withEphemeral("debugger", "app")(pod)
			if tc.interruption != nil {
				rt.InjectError("StartContainer", tc.interruption)
				_, _ = s.SyncPod(ctx, pod.UID)
				dbg := containersNamed(t, rt, "debugger")
				if len(dbg) != 1 || dbg[0].State != runtimeapi.ContainerState_CONTAINER_CREATED {
					t.Fatalf("debugger containers = %v, want one created, its start interrupted", dbg)
				}
			}
			// The next start fails while the runtime creates the task.
			rt.InjectError("StartContainer", errors.New(remains))
			_, _ = s.SyncPod(ctx, pod.UID)
			failStart(t, rt, "debugger", remains)
			_, _ = s.SyncPod(ctx, pod.UID)
			dbg := containersNamed(t, rt, "debugger")
			if len(dbg) != 1 {
				t.Fatalf("%d debugger containers after the failed start, want 1", len(dbg))
			}
			if running := dbg[0].State == runtimeapi.ContainerState_CONTAINER_RUNNING; running != tc.replaced {
				t.Errorf("debugger %s after the failed start; want replaced and running: %v", dbg[0].State, tc.replaced)
			}
		})
	}
}

func TestSyncDebuggerOfAPodThatCannotStart(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	// The init container's image is missing (Init:ErrImageNeverPull): the
	// pod never gets further, and that is the pod to debug.
	pod := testPod(withInit("setup"), withEphemeral("debugger", ""))
	pod.Spec.InitContainers[0].Image = "localhost/missing:none"
	s, rt, st, _ := newTestSyncer(t, pod, fakeImages{missing: map[string]bool{"localhost/missing:none": true}}, fakeVolumes{})
	_, _ = s.SyncPod(ctx, pod.UID) // sandbox; the init container fails
	_, _ = s.SyncPod(ctx, pod.UID)
	if w := st.waiting[podstate.ContainerKey{Type: initT, Name: "setup"}]; w.Reason != "ErrImageNeverPull" {
		t.Errorf("init container waiting = %+v", w)
	}
	if dbg := containersNamed(t, rt, "debugger"); len(dbg) != 1 || dbg[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("debugger containers = %v, want one running beside the failing init container", dbg)
	}
}

func TestSyncDebuggerWhileVolumesFail(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", ""), withEphemeral("mounter", ""))
	pod.Spec.EphemeralContainers[1].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	vols := &switchableVolumes{}
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	s.Volumes = vols
	_, _ = s.SyncPod(ctx, pod.UID) // sandbox and app, volumes fine
	vols.err = errors.New("disk on fire")
	if _, err := s.SyncPod(ctx, pod.UID); err == nil {
		t.Error("sync succeeded with volumes failing")
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 1 {
		t.Errorf("%d debuggers without volume mounts started, want 1", n)
	}
	if n := len(containersNamed(t, rt, "mounter")); n != 0 {
		t.Errorf("%d debuggers started without the volume they mount", n)
	}
}

// switchableVolumes fails SetUp once err is set.
type switchableVolumes struct{ err error }

func (v *switchableVolumes) SetUp(context.Context, *v1.Pod) (Mounter, error) {
	if v.err != nil {
		return nil, v.err
	}
	return noMounter{}, nil
}
func (*switchableVolumes) TearDown(context.Context, types.UID) error { return nil }

// failingProber says every running container failed its liveness probe
// once fail is set.
type failingProber struct {
	fail   bool
	calls  int
	forgot []types.UID
}

func (f *failingProber) UpdatePod(_ *v1.Pod, state *podstate.PodState) map[string]podstate.Probed {
	f.calls++
	out := map[string]podstate.Probed{}
	for _, c := range state.Containers {
		if c.Running() {
			out[c.ID] = podstate.Probed{Started: true, Ready: !f.fail}
			if f.fail {
				out[c.ID] = podstate.Probed{Started: true, Failed: podstate.Liveness}
			}
		}
	}
	return out
}

func (f *failingProber) ForgetPod(uid types.UID) { f.forgot = append(f.forgot, uid) }

// stopTimeouts records the timeouts StopContainer is called with.
type stopTimeouts struct {
	*criapitesting.FakeRuntimeService
	timeouts []int64
}

func (s *stopTimeouts) StopContainer(ctx context.Context, id string, timeout int64) error {
	s.timeouts = append(s.timeouts, timeout)
	return s.FakeRuntimeService.StopContainer(ctx, id, timeout)
}

func TestSyncKillsOnLivenessFailureWithTheProbesGrace(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		p.Spec.Containers[0].LivenessProbe = &v1.Probe{TerminationGracePeriodSeconds: ptr.To[int64](3)}
	})
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	stops := &stopTimeouts{FakeRuntimeService: rt}
	s.Runtime = stops
	pr := &failingProber{}
	s.Prober = pr
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(stops.timeouts) != 0 || pr.calls == 0 {
		t.Fatalf("healthy pod: stops %v, prober calls %d", stops.timeouts, pr.calls)
	}
	pr.fail = true
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(stops.timeouts) != 1 || stops.timeouts[0] != 3 {
		t.Errorf("StopContainer timeouts %v, want [3]", stops.timeouts)
	}
	if ev := eventsWith(rec, "Killing"); len(ev) != 1 || ev[0] != "Normal Killing Container app failed liveness probe, will be restarted" {
		t.Errorf("Killing events %q", ev)
	}
	if cs := containersNamed(t, rt, "app"); len(cs) != 1 || cs[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("containers after the kill: %v", cs)
	}
	// The next sync restarts it (first restart: no backoff). The fake
	// runtime dates the exit by the real clock.
	pr.fail = false
	s.Clock = clocktesting.NewFakeClock(time.Now().Add(time.Minute))
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if n := len(containersNamed(t, rt, "app")); n != 2 {
		t.Errorf("%d containers, want the killed one and its restart", n)
	}
	s.Pods = fakePods{}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(pr.forgot) == 0 {
		t.Error("the prober was not told the pod is gone")
	}
}

// allEvents drains rec.
func allEvents(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestSyncPostStartHook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	httpHook := func(path string) *v1.LifecycleHandler {
		return &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Host: host, Port: intstr.Parse(port), Path: path}}
	}
	execHook := &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "exit 1"}}}
	for _, tc := range []struct {
		name    string
		hook    *v1.LifecycleHandler
		execErr error
		// event is a part of the FailedPostStartHook Event's message; ""
		// when the hook succeeds.
		event string
	}{
		{name: "exec succeeds", hook: execHook},
		{name: "exec fails", hook: execHook, execErr: errors.New("command 'sh -c exit 1' exited with 1: oops"),
			event: `Warning FailedPostStartHook Exec lifecycle hook ([sh -c exit 1]) for Container "app" in Pod "app_default(uid-1)" failed - error: command 'sh -c exit 1' exited with 1: oops, message: ""`},
		{name: "httpGet succeeds", hook: httpHook("/ok")},
		{name: "httpGet fails", hook: httpHook("/fail"),
			event: `Warning FailedPostStartHook HTTP lifecycle hook (/fail) for Container "app" in Pod "app_default(uid-1)" failed - error: HTTP status 500 Internal Server Error`},
		{name: "sleep 0 succeeds", hook: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := testPod(func(p *v1.Pod) { p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: tc.hook} })
			s, rt, st, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
			if tc.execErr != nil {
				rt.InjectError("ExecSync", tc.execErr)
			}
			_, err := s.SyncPod(ctx, pod.UID)
			if tc.hook.Exec != nil {
				// The hook runs in the container once it started.
				calls := strings.Join(rt.GetCalls(), " ")
				if i, j := strings.LastIndex(calls, "StartContainer"), strings.Index(calls, "ExecSync"); j < 0 || i > j {
					t.Errorf("calls %s: want ExecSync after StartContainer", calls)
				}
			}
			app := containersNamed(t, rt, "app")
			if len(app) != 1 {
				t.Fatalf("%d app containers, want 1", len(app))
			}
			var failed []string
			killed := false
			events := allEvents(rec)
			for _, e := range events {
				switch {
				case strings.HasPrefix(e, "Warning "+ReasonFailedPostStartHook+" "):
					failed = append(failed, e)
				case e == "Normal Killing "+ReasonFailedPostStartHook:
					killed = true
				}
			}
			if tc.event == "" {
				if err != nil || len(failed) != 0 || app[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
					t.Fatalf("sync error %v, events %q, state %s: want the container running", err, failed, app[0].State)
				}
				// The kubelet's texts, which tools and people grep for.
				if got := strings.Join(events, "\n"); !strings.Contains(got, "Normal Created Created container: app\nNormal Started Started container app") {
					t.Errorf("events %q, want the kubelet's Created and Started", events)
				}
				return
			}
			if !errors.Is(err, errRetry) {
				t.Errorf("sync error = %v, want a retry", err)
			}
			if len(failed) != 1 || failed[0] != tc.event || !killed {
				t.Errorf("events %q (Killing: %v), want %q and a Killing event", failed, killed, tc.event)
			}
			if app[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("container %s after its hook failed, want exited", app[0].State)
			}
			w := st.waiting[podstate.ContainerKey{Type: regT, Name: "app"}]
			if w.Reason != ReasonPostStartHookError || "Warning "+ReasonFailedPostStartHook+" "+w.Message != tc.event {
				t.Errorf("waiting = %+v", w)
			}
			// The restart policy restarts it; this time the hook succeeds.
			s.Clock = clocktesting.NewFakeClock(time.Now().Add(time.Minute))
			if _, err := s.SyncPod(ctx, pod.UID); err != nil && tc.hook.HTTPGet == nil {
				t.Fatal(err)
			}
			if n := len(containersNamed(t, rt, "app")); n != 2 {
				t.Errorf("%d app containers, want the killed one and its restart", n)
			}
		})
	}
}

func TestSyncKillsPastTheActiveDeadline(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withDeadline(60))
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	res, err := s.SyncPod(ctx, pod.UID)
	if err != nil || res != (SyncResult{RequeueAfter: time.Minute}) {
		t.Fatalf("sync: %+v, %v; want a sync at the deadline, a minute on", res, err)
	}
	s.Clock = clocktesting.NewFakeClock(t0.Add(time.Minute))
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if cs := containersNamed(t, rt, "app"); len(cs) != 1 || cs[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("containers past the deadline: %v, want app stopped", cs)
	}
	if ev := eventsWith(rec, podstate.ReasonDeadlineExceeded); len(ev) != 1 || ev[0] != "Normal DeadlineExceeded "+podstate.MessageDeadlineExceeded {
		t.Errorf("DeadlineExceeded events %q", ev)
	}
	// Nothing starts again.
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if n := len(containersNamed(t, rt, "app")); n != 1 {
		t.Errorf("%d app containers, want none started past the deadline", n)
	}
}

func TestSyncMountsTheManagedHostsFile(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) {
		p.Spec.HostAliases = []v1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local"}}}
	})
	s, _, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	rec := &configRecorder{Runtime: s.Runtime}
	s.Runtime = rec
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(rec.configs) != 1 {
		t.Fatalf("%d containers created", len(rec.configs))
	}
	cfg := rec.configs[0]
	var hosts string
	for _, m := range cfg.Mounts {
		if m.ContainerPath == "/etc/hosts" {
			hosts = m.HostPath
		}
	}
	if want := filepath.Join(s.cfg.RootDir, "pods", string(pod.UID), "etc-hosts"); hosts != want {
		t.Fatalf("/etc/hosts from %q, want %q (mounts %v)", hosts, want, cfg.Mounts)
	}
	b, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# Kubernetes-managed hosts file.\n") || !strings.Contains(string(b), "10.1.2.3\tfoo.local\n") {
		t.Errorf("hosts file:\n%s", b)
	}
}

// configRecorder keeps the configs of the containers created through it.
type configRecorder struct {
	Runtime
	configs []*runtimeapi.ContainerConfig
}

func (r *configRecorder) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	r.configs = append(r.configs, cfg)
	return r.Runtime.CreateContainer(ctx, sandboxID, cfg, sb)
}

// handlerRecorder keeps the runtime handlers sandboxes are run with.
type handlerRecorder struct {
	Runtime
	handlers []string
}

func (r *handlerRecorder) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	r.handlers = append(r.handlers, handler)
	return r.Runtime.RunPodSandbox(ctx, cfg, handler)
}

// classes is a RuntimeClass lookup from a map.
type classes map[string]string

func (c classes) LookupRuntimeHandler(name *string) (string, error) {
	if name == nil || *name == "" {
		return "", nil
	}
	if h, ok := c[*name]; ok {
		return h, nil
	}
	return "", fmt.Errorf("runtimeclass.node.k8s.io %q not found", *name)
}

func TestSyncRuntimeClass(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) { rc := "fast"; p.Spec.RuntimeClassName = &rc })
	s, _, _, events := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	rec := &handlerRecorder{Runtime: s.Runtime}
	s.Runtime = rec
	s.RuntimeClasses = classes{}
	if _, err := s.SyncPod(ctx, pod.UID); !errors.Is(err, errRetry) {
		t.Fatalf("sync error = %v, want a retry", err)
	}
	if len(rec.handlers) != 0 {
		t.Errorf("a sandbox was run without its RuntimeClass: %v", rec.handlers)
	}
	if e := <-events.Events; e != `Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclass.node.k8s.io "fast" not found` {
		t.Errorf("event = %q", e)
	}
	s.RuntimeClasses = classes{"fast": "runc"}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(rec.handlers) != 1 || rec.handlers[0] != "runc" {
		t.Errorf("handlers = %v, want [runc]", rec.handlers)
	}
}
