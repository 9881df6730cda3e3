package status

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// A debug container the agent ended says why in its Terminated state: the
// denied one never ran; a stopped one keeps its exit code.
func TestDebugContainerEndedByTheAgent(t *testing.T) {
	app := ctr("c1", reg, "app", running, 0, 0, "")
	at := t0.Add(-time.Minute)
	denied := &podstate.Ending{Reason: debugapi.ReasonPolicyDenied, Message: `debug policy rule "prod": privileged`, At: at}
	stopped := &podstate.Ending{Reason: debugapi.ReasonSessionIdle, Message: "idle", At: at}
	dbgExited := ctr("e1", eph, "debug", exited, 0, 137, "Error")
	dbgCreated := ctr("e1", eph, "debug", created, 0, 0, "")
	for _, tc := range []struct {
		name   string
		pod    *v1.Pod
		state  *podstate.PodState
		want   *v1.ContainerStateTerminated
		wantID string
	}{
		{
			name:  "denied: never ran",
			pod:   pod(ephemeral("debug")),
			state: withRecords(podState(app), map[string]podstate.Record{"debug": {Ended: denied}}),
			want:  &v1.ContainerStateTerminated{ExitCode: 128, Reason: debugapi.ReasonPolicyDenied, Message: denied.Message, FinishedAt: metav1.NewTime(at)},
		},
		{
			name: "denied, record lost: the reported status is kept",
			pod: pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 128, Reason: debugapi.ReasonPolicyDenied, Message: "m", FinishedAt: metav1.NewTime(at)}}})),
			state: podState(app),
			want:  &v1.ContainerStateTerminated{ExitCode: 128, Reason: debugapi.ReasonPolicyDenied, Message: "m", FinishedAt: metav1.NewTime(at)},
		},
		{
			name:   "stopped for idleness: its exit, the agent's reason",
			pod:    pod(ephemeral("debug")),
			state:  withRecords(podState(app, dbgExited), map[string]podstate.Record{"debug": {ContainerID: "e1", Ended: stopped}}),
			want:   &v1.ContainerStateTerminated{ExitCode: 137, Reason: debugapi.ReasonSessionIdle, Message: "idle", StartedAt: metav1.NewTime(dbgExited.StartedAt), FinishedAt: metav1.NewTime(dbgExited.FinishedAt), ContainerID: "containerd://e1"},
			wantID: "containerd://e1",
		},
		{
			name:   "stopped while created, never started",
			pod:    pod(ephemeral("debug")),
			state:  withRecords(podState(app, dbgCreated), map[string]podstate.Record{"debug": {ContainerID: "e1", Ended: stopped}}),
			want:   &v1.ContainerStateTerminated{ExitCode: 128, Reason: debugapi.ReasonSessionIdle, Message: "idle", FinishedAt: metav1.NewTime(at), ContainerID: "containerd://e1"},
			wantID: "containerd://e1",
		},
		{
			name:   "an ending of an earlier container does not apply",
			pod:    pod(ephemeral("debug")),
			state:  withRecords(podState(app, dbgExited), map[string]podstate.Record{"debug": {ContainerID: "e0", Ended: stopped}}),
			want:   &v1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", StartedAt: metav1.NewTime(dbgExited.StartedAt), FinishedAt: metav1.NewTime(dbgExited.FinishedAt), ContainerID: "containerd://e1"},
			wantID: "containerd://e1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, nil, node, t0)
			cs := s.EphemeralContainerStatuses[0]
			expectEqual(t, "terminated state", tc.want, cs.State.Terminated)
			if cs.State.Running != nil || cs.State.Waiting != nil {
				t.Errorf("state %+v has more than Terminated", cs.State)
			}
			if cs.ContainerID != tc.wantID {
				t.Errorf("containerID %q, want %q", cs.ContainerID, tc.wantID)
			}
			if s.Phase != v1.PodRunning {
				t.Errorf("phase %s: a debug container never changes the pod's phase", s.Phase)
			}
		})
	}
}
