//go:build e2e

package e2enode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// TestLifecycle runs one agent and, in parallel, pods whose postStart hooks
// and readiness gates must behave as the kubelet's, with the kubelet's
// Event texts.
func TestLifecycle(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)

	t.Run("PostStartHookRunsBeforeTheContainerCounts", func(t *testing.T) {
		t.Parallel()
		// The main command waits for the file the hook writes: it runs
		// in the container, beside it.
		pod := probePod(ns, "hooked", busyboxImage,
			[]string{"sh", "-c", "while [ ! -f /tmp/hook ]; do sleep 0.1; done; cat /tmp/hook; exec sleep 3600"},
			func(c *v1.Container) {
				c.Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo written-by-hook > /tmp/hook"}}}}
			})
		createPod(t, pod)
		p := waitPod(t, ns, "hooked", "Ready", 60*time.Second, podReady)
		if cs := containerStatus(p.Status.ContainerStatuses, "app"); cs == nil || cs.RestartCount != 0 {
			t.Errorf("container status %+v, want no restart", cs)
		}
		waitFor(t, "the main command to see the hook's file", 30*time.Second, func(context.Context) (bool, error) {
			out, err := kubectl(t, "-n", ns, "logs", "hooked")
			return err == nil && strings.Contains(out, "written-by-hook"), nil
		})
		// The kubelet's texts.
		waitEvent(t, p, "Created", "Created container: app")
		waitEvent(t, p, "Started", "Started container app")
		if hasEvent(t, p, "FailedPostStartHook", "") {
			t.Error("a FailedPostStartHook Event for a hook that succeeded")
		}
	})

	t.Run("FailingPostStartHookRestarts", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "hook-fails", busyboxImage, []string{"sleep", "3600"}, func(c *v1.Container) {
			c.Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo hook-says-no; exit 1"}}}}
		})
		created := createPod(t, pod)
		p := waitPod(t, ns, "hook-fails", "restarted", 90*time.Second, func(p *v1.Pod) bool {
			cs := containerStatus(p.Status.ContainerStatuses, "app")
			return cs != nil && cs.RestartCount >= 1
		})
		waitEvent(t, created, "FailedPostStartHook",
			fmt.Sprintf(`Exec lifecycle hook ([sh -c echo hook-says-no; exit 1]) for Container "app" in Pod "hook-fails_%s(%s)" failed - error: `, ns, p.UID))
		waitEvent(t, created, "Killing", "FailedPostStartHook")
		if !hasEventContaining(t, p, "FailedPostStartHook", `message: "hook-says-no\n"`) {
			t.Error("the FailedPostStartHook Event lacks the hook's output")
		}
		if podReady(p) {
			t.Error("a pod whose postStart hook always fails is Ready")
		}
		cs := containerStatus(p.Status.ContainerStatuses, "app")
		if w := cs.State.Waiting; w == nil || (w.Reason != "PostStartHookError" && w.Reason != "CrashLoopBackOff") {
			t.Errorf("state %+v, want waiting as PostStartHookError or CrashLoopBackOff", cs.State)
		}
	})

	t.Run("ReadinessGate", func(t *testing.T) {
		t.Parallel()
		const gate = "example.com/load-balancer"
		pod := probePod(ns, "gated", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: gate}}
		createPod(t, pod)
		notReady := func(msg string) func(*v1.Pod) bool {
			return func(p *v1.Pod) bool {
				cr, r := podCondition(p, v1.ContainersReady), podCondition(p, v1.PodReady)
				return cr != nil && cr.Status == v1.ConditionTrue && r != nil && r.Status == v1.ConditionFalse &&
					r.Reason == "ReadinessGatesNotReady" && r.Message == msg
			}
		}
		waitPod(t, ns, "gated", "containers ready, the gate's condition missing", 60*time.Second,
			notReady(`corresponding condition of pod readiness gate "example.com/load-balancer" does not exist.`))

		setGate := func(status v1.ConditionStatus) {
			t.Helper()
			patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q}]}}`, gate, status)
			if _, err := client.CoreV1().Pods(ns).Patch(context.Background(), "gated", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
				t.Fatalf("patch the gate's condition: %v", err)
			}
		}
		setGate(v1.ConditionFalse)
		waitPod(t, ns, "gated", "the gate False", 30*time.Second,
			notReady(`the status of pod readiness gate "example.com/load-balancer" is not "True", but False`))
		// A few syncs later, the agent has not dropped the gate's condition.
		time.Sleep(3 * time.Second)
		p := waitPod(t, ns, "gated", "status", 10*time.Second, func(*v1.Pod) bool { return true })
		if c := podCondition(p, gate); c == nil || c.Status != v1.ConditionFalse || podReady(p) {
			t.Fatalf("gate condition %+v, ready %v: want the gate kept False and the pod not Ready", c, podReady(p))
		}
		setGate(v1.ConditionTrue)
		waitPod(t, ns, "gated", "Ready once its gate is True", 30*time.Second, podReady)
	})

	t.Run("ActiveDeadlineFailsThePod", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "deadline", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		pod.Spec.ActiveDeadlineSeconds = ptr.To[int64](5)
		created := createPod(t, pod)
		p := waitPod(t, ns, "deadline", "Failed past its deadline", 60*time.Second, phaseIs(v1.PodFailed))
		if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
			t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
		}
		waitEvent(t, created, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		rs := criClient(t)
		waitFor(t, "the container stopped", 30*time.Second, func(context.Context) (bool, error) {
			for _, c := range criContainers(t, rs, string(p.UID), "app") {
				if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
					return false, nil
				}
			}
			return true, nil
		})
	})
}

// hasEventContaining reports whether the pod has an Event with that reason
// whose message contains part.
func hasEventContaining(t *testing.T, pod *v1.Pod, reason, part string) bool {
	t.Helper()
	return hasPodEvent(t, pod, reason, func(msg string) bool { return strings.Contains(msg, part) })
}
