//go:build e2e

package e2enode

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/targetcheck"
)

// TestTargetPreflight: with --debug-target-preflight the agent checks at
// start, with two throwaway containers on the real containerd, that a
// container created with PID namespace mode TARGET shares its target's PID
// namespace; it reports the result on the Node (EphemeralTargetNamespace
// True) and as a metric, and leaves none of the check's containers behind.
// Restarted without the flag, it removes the condition.
func TestTargetPreflight(t *testing.T) {
	// Heartbeats have a resolution of a second; a condition an earlier
	// run left has an older one.
	started := time.Now().Truncate(time.Second)
	a := startAgent(t, "--debug-target-preflight")
	var cond *v1.NodeCondition
	waitFor(t, "the node condition "+string(targetcheck.ConditionType), 60*time.Second, func(ctx context.Context) (bool, error) {
		cond = nil
		n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for i := range n.Status.Conditions {
			if c := &n.Status.Conditions[i]; c.Type == targetcheck.ConditionType && !c.LastHeartbeatTime.Time.Before(started) {
				cond = c
			}
		}
		return cond != nil, nil
	})
	if cond.Status != v1.ConditionTrue || cond.Reason != targetcheck.ReasonShared {
		t.Fatalf("%s = %s/%s %q, want True/%s", cond.Type, cond.Status, cond.Reason, cond.Message, targetcheck.ReasonShared)
	}
	t.Logf("%s: %s", cond.Type, cond.Message)
	fams := agentMetrics(t)
	for result, want := range map[string]float64{"shared": 1, "mismatch": 0, "error": 0} {
		if got := metricSum(fams, "ephemeral_agent_target_preflight_result", "result="+result); got != want {
			t.Errorf("ephemeral_agent_target_preflight_result{result=%q} = %v, want %v", result, got, want)
		}
	}
	rs := criClient(t)
	left, err := rs.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{targetcheck.Label: "target"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d sandboxes of the check left in the runtime, want none", len(left))
	}

	if err := a.stop(30 * time.Second); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	startAgent(t)
	waitFor(t, "the node condition "+string(targetcheck.ConditionType)+" removed without the flag", 60*time.Second, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == targetcheck.ConditionType {
				return false, nil
			}
		}
		return true, nil
	})
}
