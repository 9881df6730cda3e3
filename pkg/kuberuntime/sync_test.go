package kuberuntime

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

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

type fakeVolumes struct{ err error }

func (f fakeVolumes) SetUp(context.Context, *v1.Pod) (Mounter, error) { return noMounter{}, f.err }
func (fakeVolumes) TearDown(context.Context, types.UID) error         { return nil }

type noMounter struct{}

func (noMounter) Mounts(*v1.Container) ([]*runtimeapi.Mount, error) { return nil, nil }

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
