package kuberuntime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/images"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/volume"
)

// noVolumesSetUp gives every pod the real volume package's mounts of no
// volume at all, so that a volumeMount naming a missing volume fails as it
// would on a node.
type noVolumesSetUp struct{}

func (noVolumesSetUp) SetUp(context.Context, *v1.Pod) (Mounter, error) {
	return volume.PodVolumes{}, nil
}
func (noVolumesSetUp) TearDown(context.Context, types.UID) error { return nil }

// pidTargetRuntime refuses, as containerd does, a container that is to
// join the PID namespace of a container that no longer runs; the fake
// runtime alone takes it.
type pidTargetRuntime struct {
	*criapitesting.FakeRuntimeService
}

func (r pidTargetRuntime) CreateContainer(ctx context.Context, sandboxID string, config *runtimeapi.ContainerConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	if target := config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetTargetId(); target != "" {
		st, err := r.ContainerStatus(ctx, target, false)
		if err != nil || st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			return "", fmt.Errorf("failed to create containerd task: container %s is not running: cannot join its PID namespace", target)
		}
	}
	return r.FakeRuntimeService.CreateContainer(ctx, sandboxID, config, sandbox)
}

// syncBounded syncs uid once and fails the test if the sync panics or
// does not return in time.
func syncBounded(ctx context.Context, t *testing.T, s *Syncer, uid types.UID) error {
	t.Helper()
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{panic: r}
			}
		}()
		_, err := s.SyncPod(ctx, uid)
		done <- result{err: err}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("SyncPod(%s) panicked: %v", uid, r.panic)
		}
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("SyncPod(%s) did not return", uid)
		return nil
	}
}

// TestSyncBadInput: a pod with bad input (most of which the API server
// would reject, but a fake or older one may hand over) never makes the
// sync panic or hang; its container waits with the kubelet's reason and
// an Event says why, and a healthy pod synced by the same Syncer still
// starts its containers, its debugger exactly once.
func TestSyncBadInput(t *testing.T) {
	long := strings.Repeat("a", 253)
	for _, tc := range []struct {
		name string
		pod  func(*v1.Pod)
		// between runs after the first sync of the bad pod.
		between func(ctx context.Context, t *testing.T, rt *criapitesting.FakeRuntimeService)
		// wantReason and wantMessage are the debugger's Waiting reason and
		// part of its message; "" for a debugger that starts.
		wantReason, wantMessage string
		// wantEvent is part of a Warning Event about it.
		wantEvent string
		// noSandbox: the bad pod gets no sandbox, hence no container.
		noSandbox bool
		// started lists the ephemeral containers that start, each exactly once.
		started []string
	}{
		{
			name:        "malformed image reference",
			pod:         func(p *v1.Pod) { p.Spec.EphemeralContainers[0].Image = "UPPER/Case::bad" },
			wantReason:  images.ReasonInvalidImageName,
			wantMessage: `Failed to apply default image tag "UPPER/Case::bad"`,
			wantEvent:   "Warning Failed Error: InvalidImageName",
		},
		{
			name:        "target not in the spec",
			pod:         func(p *v1.Pod) { p.Spec.EphemeralContainers[0].TargetContainerName = "nope" },
			wantReason:  ReasonCreateContainerConfigError,
			wantMessage: "unable to find target container nope",
			wantEvent:   "Warning Failed Error: unable to find target container nope",
		},
		{
			// The target ran and exited: like the kubelet, the agent
			// names it as the target, and the runtime refuses to join a
			// PID namespace that is gone.
			name: "target is a finished init container",
			pod: func(p *v1.Pod) {
				withInit("setup")(p)
				p.Spec.EphemeralContainers[0].TargetContainerName = "setup"
			},
			between: func(ctx context.Context, t *testing.T, rt *criapitesting.FakeRuntimeService) {
				for _, c := range listPodContainers(t, rt, "bad", "setup") {
					if err := rt.StopContainer(ctx, c.Id, 0); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantReason:  ReasonCreateContainerError,
			wantMessage: "cannot join its PID namespace",
			wantEvent:   "cannot join its PID namespace",
		},
		{
			name: "volumeMount naming a missing volume",
			pod: func(p *v1.Pod) {
				p.Spec.EphemeralContainers[0].VolumeMounts = []v1.VolumeMount{{Name: "nope", MountPath: "/nope"}}
			},
			wantReason:  ReasonCreateContainerConfigError,
			wantMessage: `cannot find volume "nope" to mount into container "debugger"`,
			wantEvent:   `Warning Failed Error: cannot find volume "nope" to mount into container "debugger"`,
		},
		{
			// The runtime is the judge of an environment's size (the
			// kubelet sets no limit); the fake runtime takes it.
			name: "1 MiB env value",
			pod: func(p *v1.Pod) {
				p.Spec.EphemeralContainers[0].Env = []v1.EnvVar{{Name: "BIG", Value: strings.Repeat("x", 1<<20)}}
			},
			started: []string{"debugger"},
		},
		{
			name: "100 ephemeral containers",
			pod: func(p *v1.Pod) {
				p.Spec.EphemeralContainers = nil
				for i := range 100 {
					withEphemeral(fmt.Sprintf("debugger-%d", i), "app")(p)
				}
			},
			started: func() []string {
				var names []string
				for i := range 100 {
					names = append(names, fmt.Sprintf("debugger-%d", i))
				}
				return names
			}(),
		},
		{
			name: "253-character names",
			pod: func(p *v1.Pod) {
				p.Spec.Containers[0].Name = long
				p.Spec.EphemeralContainers[0].Name = "d" + long[1:]
				p.Spec.EphemeralContainers[0].TargetContainerName = long
			},
			started: []string{"d" + long[1:]},
		},
		{
			// Valid for the API, but namespace_name_uid is longer than
			// a file name may be: the pod's log directory cannot exist,
			// as with the kubelet, which names it the same way. The pod
			// gets no sandbox (its containers stay ContainerCreating)
			// and an Event says why.
			name:      "253-character pod name",
			pod:       func(p *v1.Pod) { p.Name = long },
			wantEvent: "Warning FailedCreatePodSandBox Failed to create pod sandbox: create pod log directory",
			noSandbox: true,
		},
		{
			name: "unicode names",
			pod: func(p *v1.Pod) {
				p.Name = "pöd-🐛"
				p.Spec.Containers[0].Name = "äpp"
				p.Spec.EphemeralContainers[0].Name = "débogueur-🐛"
				p.Spec.EphemeralContainers[0].TargetContainerName = "äpp"
			},
			started: []string{"débogueur-🐛"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			bad := testPod(withEphemeral("debugger", "app"), func(p *v1.Pod) { p.Name, p.UID = "bad", "bad" }, tc.pod)
			healthy := testPod(withEphemeral("debugger", "app"), func(p *v1.Pod) { p.Name, p.UID = "healthy", "healthy" })
			s, rt, st, _ := newTestSyncer(t, nil, fakeImages{}, fakeVolumes{})
			// Room for every Event of 100 debuggers: the fake recorder
			// blocks when full.
			rec := record.NewFakeRecorder(10000)
			s.Recorder = rec
			s.Pods = pt.NewPodCache(bad, healthy)
			s.Images = images.NewPuller(criapitesting.NewFakeImageService(), rec, nil)
			s.Volumes = noVolumesSetUp{}
			s.Runtime = pidTargetRuntime{rt}

			// The first sync starts the sandbox and the pod's own
			// containers, the next ones the debuggers; the last sync of the
			// bad pod must neither duplicate nor lose anything.
			var events []string
			for round := range 3 {
				_ = syncBounded(ctx, t, s, bad.UID)
				if round == 0 && tc.between != nil {
					tc.between(ctx, t, rt)
				}
				if round > 0 && tc.wantReason != "" {
					w := st.waiting[podstate.ContainerKey{Type: ephT, Name: "debugger"}]
					if w.Reason != tc.wantReason || !strings.Contains(w.Message, tc.wantMessage) {
						t.Errorf("round %d: debugger waiting = %+v, want %s containing %q", round, w, tc.wantReason, tc.wantMessage)
					}
				}
				events = append(events, allEvents(rec)...)
				if err := syncBounded(ctx, t, s, healthy.UID); err != nil {
					t.Errorf("round %d: healthy pod's sync: %v", round, err)
				}
				_ = allEvents(rec)
			}
			if tc.wantEvent != "" && !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, tc.wantEvent) }) {
				t.Errorf("no Event containing %q in %q", tc.wantEvent, events)
			}

			for _, name := range tc.started {
				cs := listPodContainers(t, rt, bad.UID, name)
				if len(cs) != 1 || cs[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
					t.Errorf("%.20s…: %d containers, want one running", name, len(cs))
				}
			}
			if tc.wantReason != "" {
				if n := len(listPodContainers(t, rt, bad.UID, "debugger")); n != 0 {
					t.Errorf("%d debugger containers created from bad input", n)
				}
			}
			wantApp := 1
			if tc.noSandbox {
				wantApp = 0
			}
			if n := len(listPodContainers(t, rt, bad.UID, bad.Spec.Containers[0].Name)); n != wantApp {
				t.Errorf("bad pod's app: %d containers, want %d", n, wantApp)
			}
			for _, name := range []string{"app", "debugger"} {
				if n := len(listPodContainers(t, rt, healthy.UID, name)); n != 1 {
					t.Errorf("healthy pod's %s: %d containers, want 1", name, n)
				}
			}
		})
	}
}

// listPodContainers lists the CRI containers of pod uid named name.
func listPodContainers(t *testing.T, rt *criapitesting.FakeRuntimeService, uid types.UID, name string) []*runtimeapi.Container {
	t.Helper()
	var out []*runtimeapi.Container
	for _, c := range containersNamed(t, rt, name) {
		if c.Labels[criconfig.LabelPodUID] == string(uid) {
			out = append(out, c)
		}
	}
	return out
}
