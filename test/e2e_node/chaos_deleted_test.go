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
	"k8s.io/utils/ptr"
)

// TestChaosPodDeletedMidCreate deletes pods while their debug container is
// being created (its image pull hangs; the runtime just created it; the
// request has just been made; the agent is down, killed after the
// request): each time, nothing of the pod is left behind: no CRI sandbox
// or container, no mount, no pod directory.
func TestChaosPodDeletedMidCreate(t *testing.T) {
	sc := chaos(t)
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	rs := criClient(t)
	stall, accepted := stallingRegistry(t)

	ways := []struct {
		name string
		// debugger is the debug container to add.
		debugger func(name string) v1.EphemeralContainer
		// reach returns once the creation of the pod's debugger reached
		// the point where the pod is to be deleted.
		reach func(t *testing.T, pod *v1.Pod, name string)
	}{
		{
			name: "pulling",
			debugger: func(name string) v1.EphemeralContainer {
				ec := countingDebugger(name, 3600)
				ec.Image, ec.ImagePullPolicy = stall+"/stall/debug:1", v1.PullAlways
				return ec
			},
			reach: func(t *testing.T, _ *v1.Pod, _ string) {
				before := accepted.Load()
				waitFor(t, "the debugger's pull to reach the stalling registry", 30*time.Second, func(context.Context) (bool, error) {
					return accepted.Load() > before, nil
				})
			},
		},
		{
			name:     "created",
			debugger: func(name string) v1.EphemeralContainer { return countingDebugger(name, 3600) },
			reach: func(t *testing.T, pod *v1.Pod, name string) {
				deadline := time.Now().Add(30 * time.Second)
				for len(criContainers(t, rs, string(pod.UID), name)) == 0 {
					if time.Now().After(deadline) {
						t.Fatalf("the runtime held no container %s within 30s", name)
					}
				}
			},
		},
		{
			name:     "requested",
			debugger: func(name string) v1.EphemeralContainer { return countingDebugger(name, 3600) },
			reach:    func(*testing.T, *v1.Pod, string) {},
		},
		{
			// The agent dies right after the request and the pod is
			// deleted (forcibly: no agent confirms it) before it is
			// back: the next agent finds a runtime pod the API server
			// no longer has.
			name:     "agent-down",
			debugger: func(name string) v1.EphemeralContainer { return countingDebugger(name, 3600) },
			reach:    func(*testing.T, *v1.Pod, string) { a.kill() },
		},
	}
	for round := 1; round <= sc.DeleteRounds; round++ {
		for _, w := range ways {
			podName := fmt.Sprintf("%s-%d", w.name, round)
			pod := runningSharedApp(t, ns, podName)
			addEphemeral(t, pod, w.debugger("dbg"))
			w.reach(t, pod, "dbg")
			opts := metav1.DeleteOptions{}
			if w.name == "agent-down" {
				opts.GracePeriodSeconds = ptr.To[int64](0)
			}
			if err := client.CoreV1().Pods(ns).Delete(context.Background(), podName, opts); err != nil {
				t.Fatalf("delete pod %s: %v", podName, err)
			}
			if w.name == "agent-down" {
				waitPodGone(t, ns, podName, 30*time.Second)
				a = startAgent(t)
			}
			waitPodGone(t, ns, podName, 60*time.Second)
			assertPodLeftNothing(t, pod)
		}
	}
	cleanupPods(t, ns)
}

// assertPodLeftNothing waits until the runtime holds no sandbox or
// container of the deleted pod and its directory is gone with its mounts.
func assertPodLeftNothing(t *testing.T, pod *v1.Pod) {
	t.Helper()
	waitFor(t, fmt.Sprintf("nothing left of deleted pod %s", pod.Name), 60*time.Second, func(context.Context) (bool, error) {
		if left := podLeftovers(t, map[types.UID]bool{pod.UID: true}); len(left) > 0 {
			return false, fmt.Errorf("left: %s", strings.Join(left, "; "))
		}
		return true, nil
	})
}
