package logs_test

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/logs"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// podCache is the agent's pod cache as a podstate.Lookup reads it.
type podCache map[string]*v1.Pod

func (c podCache) GetPod(namespace, name string) (*v1.Pod, bool) {
	p, ok := c[namespace+"/"+name]
	return p, ok
}

// addSandbox adds a sandbox of pod to the fake runtime, labelled as the
// sync loop labels it.
func addSandbox(rt *criapitesting.FakeRuntimeService, pod *v1.Pod, id string, ready bool, created time.Time) {
	state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		state = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	rt.Sandboxes[id] = &criapitesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: id, State: state, CreatedAt: created.UnixNano(), Labels: criconfig.SandboxLabels(pod),
		Metadata: &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
	}}
}

// addContainer adds an instance of the pod's container to the fake
// runtime, labelled and annotated as the sync loop creates it, with its
// log at /logs/<id>.log.
func addContainer(rt *criapitesting.FakeRuntimeService, pod *v1.Pod, sandboxID, id string, typ criconfig.ContainerType, name string, st runtimeapi.ContainerState, created time.Time) {
	spec := podstate.ContainerSpec(pod, typ, name)
	rt.Containers[id] = &criapitesting.FakeContainer{SandboxID: sandboxID, ContainerStatus: runtimeapi.ContainerStatus{
		Id: id, State: st, CreatedAt: created.UnixNano(), LogPath: "/logs/" + id + ".log",
		Metadata:    &runtimeapi.ContainerMetadata{Name: name},
		Image:       &runtimeapi.ImageSpec{Image: spec.Image},
		Labels:      criconfig.ContainerLabels(pod, name),
		Annotations: criconfig.ContainerAnnotations(pod, spec, typ, 0),
	}}
}

func TestFromPodState(t *testing.T) {
	// app ran once in the pod's first sandbox and runs again in its second;
	// setup ran once; debug runs; waiting was never created.
	pod := pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"), func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "waiting", Image: "localhost/slow:test"})
	})
	rt := criapitesting.NewFakeRuntimeService()
	addSandbox(rt, pod, "sb1", false, pt.T0)
	addSandbox(rt, pod, "sb2", true, pt.T0.Add(time.Minute))
	addContainer(rt, pod, "sb1", "app-0", pt.Regular, "app", pt.Exited, pt.T0.Add(10*time.Second))
	addContainer(rt, pod, "sb2", "setup-0", pt.Init, "setup", pt.Exited, pt.T0.Add(65*time.Second))
	addContainer(rt, pod, "sb2", "app-1", pt.Regular, "app", pt.Running, pt.T0.Add(70*time.Second))
	addContainer(rt, pod, "sb2", "debug-0", pt.Ephemeral, "debug", pt.Running, pt.T0.Add(80*time.Second))
	resolver := logs.FromPodState(podstate.NewLookup(podCache{"default/app": pod}, podstate.NewObserver(rt)))

	for _, tc := range []struct {
		name        string
		pod         string
		container   string
		previous    bool
		want        logs.LogTarget
		wantErr     error  // a sentinel the error must wrap
		wantWaiting string // the reason of a *WaitingError
	}{
		{name: "the newest instance", pod: "app", container: "app", want: logs.LogTarget{Path: "/logs/app-1.log", ContainerID: "app-1"}},
		{name: "previous: the one before, of an earlier sandbox", pod: "app", container: "app", previous: true, want: logs.LogTarget{Path: "/logs/app-0.log", ContainerID: "app-0"}},
		{name: "an init container", pod: "app", container: "setup", want: logs.LogTarget{Path: "/logs/setup-0.log", ContainerID: "setup-0"}},
		{name: "an ephemeral container", pod: "app", container: "debug", want: logs.LogTarget{Path: "/logs/debug-0.log", ContainerID: "debug-0"}},
		{name: "previous of a container that ran once", pod: "app", container: "setup", previous: true, wantErr: logs.ErrPreviousNotFound},
		{name: "never created: waiting to start", pod: "app", container: "waiting", wantWaiting: "ContainerCreating"},
		{name: "previous of a container never created", pod: "app", container: "waiting", previous: true, wantErr: logs.ErrPreviousNotFound},
		{name: "no such container", pod: "app", container: "nope", wantErr: podstate.ErrContainerNotFound},
		{name: "no such pod", pod: "nope", container: "app", wantErr: podstate.ErrPodNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			got, err := resolver.ContainerLogTarget(ctx, "default", tc.pod, tc.container, tc.previous)
			switch {
			case tc.wantWaiting != "":
				var w *logs.WaitingError
				if !errors.As(err, &w) || w.Reason != tc.wantWaiting {
					t.Errorf("ContainerLogTarget = %+v, %v; want waiting %s", got, err, tc.wantWaiting)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("ContainerLogTarget = %+v, %v; want %v", got, err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("ContainerLogTarget: %v", err)
			case got != tc.want:
				t.Errorf("ContainerLogTarget = %+v, want %+v", got, tc.want)
			}
		})
	}
}
