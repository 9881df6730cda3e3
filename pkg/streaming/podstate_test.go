package streaming_test

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/streaming"
)

// testPod has a regular container app, an init container setup, an
// ephemeral container debug with a terminal, and a regular container
// waiting that was never created.
func testPod() *v1.Pod {
	return pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"), func(p *v1.Pod) {
		p.Spec.EphemeralContainers[0].TTY = true
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "waiting", Image: "localhost/slow:test"})
	})
}

func TestFromPodState(t *testing.T) {
	pod := testPod()
	// running: sb2, the newest sandbox, is ready. app restarted: its
	// newest instance is in sb2, an older one in sb1.
	running := criapitesting.NewFakeRuntimeService()
	inRunning := pt.CRI{Runtime: running, Pod: pod}
	inRunning.Sandbox("sb1", 0, false, pt.T0, "10.88.0.2")
	inRunning.Sandbox("sb2", 0, true, pt.T0.Add(time.Minute), "10.88.0.2")
	inRunning.Container("app-0", "sb1", pt.Regular, "app", pt.Exited, 0, pt.T0.Add(10*time.Second), 0)
	inRunning.Container("setup-0", "sb2", pt.Init, "setup", pt.Exited, 0, pt.T0.Add(65*time.Second), 0)
	inRunning.Container("app-1", "sb2", pt.Regular, "app", pt.Running, 0, pt.T0.Add(70*time.Second), 0)
	inRunning.Container("debug-0", "sb2", pt.Ephemeral, "debug", pt.Exited, 0, pt.T0.Add(80*time.Second), 0)
	// stopped: the newest sandbox is stopped, an older one is still ready.
	stopped := criapitesting.NewFakeRuntimeService()
	inStopped := pt.CRI{Runtime: stopped, Pod: pod}
	inStopped.Sandbox("sb1", 0, true, pt.T0, "10.88.0.2")
	inStopped.Sandbox("sb2", 0, false, pt.T0.Add(time.Minute), "10.88.0.2")
	inStopped.Container("app-1", "sb2", pt.Regular, "app", pt.Exited, 0, pt.T0.Add(70*time.Second), 0)

	for _, tc := range []struct {
		name      string
		rt        *criapitesting.FakeRuntimeService
		pod       string
		uid       types.UID
		container string
		wantSB    string
		want      *streaming.Container
		wantErr   error
	}{
		{name: "the pod alone: its ready sandbox", rt: running, pod: "app", wantSB: "sb2"},
		{
			name: "a running container: its newest instance", rt: running, pod: "app", uid: pod.UID, container: "app", wantSB: "sb2",
			want: &streaming.Container{Name: "app", ID: "app-1", Running: true},
		},
		{
			name: "an exited init container", rt: running, pod: "app", container: "setup", wantSB: "sb2",
			want: &streaming.Container{Name: "setup", ID: "setup-0"},
		},
		{
			name: "an ephemeral container with a terminal", rt: running, pod: "app", container: "debug", wantSB: "sb2",
			want: &streaming.Container{Name: "debug", ID: "debug-0", Ephemeral: true, TTY: true},
		},
		{
			name: "a container never created: no ID", rt: running, pod: "app", container: "waiting", wantSB: "sb2",
			want: &streaming.Container{Name: "waiting"},
		},
		{
			name: "newest sandbox stopped: no sandbox, though an older one is ready", rt: stopped, pod: "app", container: "app",
			want: &streaming.Container{Name: "app", ID: "app-1"},
		},
		{name: "no such pod", rt: running, pod: "nope", wantErr: podstate.ErrPodNotFound},
		{name: "a replaced pod: other UID", rt: running, pod: "app", uid: "uid-old", container: "app", wantErr: podstate.ErrPodNotFound},
		{name: "no such container", rt: running, pod: "app", container: "nope", wantErr: podstate.ErrContainerNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pods := streaming.FromPodState(podstate.NewLookup(pt.NewPods(pod), podstate.NewObserver(tc.rt)))
			got, err := pods.StreamTarget(ctx, "default", tc.pod, tc.uid, tc.container)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("StreamTarget = %+v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Pod != pod {
				t.Errorf("target pod %v, want the cached one", got.Pod)
			}
			if got.SandboxID != tc.wantSB {
				t.Errorf("sandbox %q, want %q", got.SandboxID, tc.wantSB)
			}
			switch {
			case tc.want == nil && got.Container != nil:
				t.Errorf("container %+v when none was asked for", got.Container)
			case tc.want != nil && (got.Container == nil || *got.Container != *tc.want):
				t.Errorf("container %+v, want %+v", got.Container, tc.want)
			}
		})
	}

	// A runtime that cannot be read is a failure to look, not a missing
	// pod or container.
	broken := criapitesting.NewFakeRuntimeService()
	broken.InjectError("ListContainers", errors.New("runtime unavailable"))
	_, ctx := ktesting.NewTestContext(t)
	_, err := streaming.FromPodState(podstate.NewLookup(pt.NewPods(pod), podstate.NewObserver(broken))).
		StreamTarget(ctx, "default", "app", "", "app")
	if err == nil || errors.Is(err, podstate.ErrPodNotFound) || errors.Is(err, podstate.ErrContainerNotFound) {
		t.Errorf("StreamTarget over a broken runtime = %v, want an error that is neither not-found", err)
	}
}
