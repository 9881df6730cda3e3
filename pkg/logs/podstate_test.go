package logs_test

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/logs"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestFromPodState(t *testing.T) {
	// app ran once in the pod's first sandbox and runs again in its second;
	// setup ran once; debug runs; waiting was never created.
	pod := pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"), func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "waiting", Image: "localhost/slow:test"})
	})
	rt := criapitesting.NewFakeRuntimeService()
	// The containers' logs are at /logs/<id>.log.
	f := pt.CRI{Runtime: rt, Pod: pod, LogDir: "/logs"}
	f.Sandbox("sb1", 0, false, pt.T0)
	f.Sandbox("sb2", 0, true, pt.T0.Add(time.Minute))
	f.Container("app-0", "sb1", pt.Regular, "app", pt.Exited, 0, pt.T0.Add(10*time.Second), 0)
	f.Container("setup-0", "sb2", pt.Init, "setup", pt.Exited, 0, pt.T0.Add(65*time.Second), 0)
	f.Container("app-1", "sb2", pt.Regular, "app", pt.Running, 0, pt.T0.Add(70*time.Second), 0)
	f.Container("debug-0", "sb2", pt.Ephemeral, "debug", pt.Running, 0, pt.T0.Add(80*time.Second), 0)
	resolver := logs.FromPodState(podstate.NewLookup(pt.NewPods(pod), podstate.NewObserver(rt)))

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
