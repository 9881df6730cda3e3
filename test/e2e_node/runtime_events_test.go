//go:build e2e

package e2enode

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestRuntimeEventsNoticeExits: with the relist and the resync pushed out
// to ten minutes, only the runtime's events can tell the agent that a
// container exited. A debugger that exits at once and one that exits after
// the agent's own status writes settled reach Terminated, an app container
// stopped behind the agent's back is restarted, and after a containerd
// restart the reopened stream still reports exits.
func TestRuntimeEventsNoticeExits(t *testing.T) {
	startAgent(t, "--relist-period=10m", "--sync-frequency=10m")
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "events")

	// "sleep 3" exits after the start's status writes (each of which syncs
	// the pod) are done: only an event explains a later sync.
	addEphemeral(t, pod, debugContainer("quick", "app", "true"), debugContainer("later", "app", "sleep", "3"))
	for _, name := range []string{"quick", "later"} {
		got := waitPod(t, ns, pod.Name, name+" terminated", 60*time.Second, ephemeralTerminated(name))
		if s := ephemeralStatus(got, name).State.Terminated; s.ExitCode != 0 {
			t.Errorf("%s terminated with %+v, want exit code 0", name, s)
		}
	}

	app := containerStatus(getPod(t, ns, pod.Name).Status.ContainerStatuses, "app")
	crictl(t, "stop", "--timeout", "0", strings.TrimPrefix(app.ContainerID, "containerd://"))
	waitPod(t, ns, pod.Name, "app restarted", 60*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.ContainerStatuses, "app")
		return s != nil && s.RestartCount > app.RestartCount && s.State.Running != nil
	})

	clusterScript(t, "stop", "containerd")
	clusterScript(t, "start", "containerd")
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	addEphemeral(t, pod, debugContainer("after-restart", "app", "sleep", "3"))
	got := waitPod(t, ns, pod.Name, "after-restart terminated", 60*time.Second, ephemeralTerminated("after-restart"))
	if s := ephemeralStatus(got, "after-restart").State.Terminated; s.ExitCode != 0 {
		t.Errorf("after-restart terminated with %+v, want exit code 0", s)
	}

	fams := agentMetrics(t)
	if n := metricSum(fams, "ephemeral_agent_runtime_event_stream_connects_total"); n < 2 {
		t.Errorf("ephemeral_agent_runtime_event_stream_connects_total = %v, want at least 2 (a reconnection after the restart)", n)
	}
	if n := metricSum(fams, "ephemeral_agent_runtime_event_stream_connected"); n != 1 {
		t.Errorf("ephemeral_agent_runtime_event_stream_connected = %v, want 1", n)
	}
}
