//go:build e2e

package e2enode

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestAgentMetrics: /metrics counts the CRI calls under the kubelet's names
// and operation types, shows the sync queue under component-base's names,
// and the tracked pods fall back once a pod is gone.
func TestAgentMetrics(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	// Pods of other namespaces may run on the node: the count after this
	// test's pod is gone is the count before it came.
	before := metricSum(agentMetrics(t), "ephemeral_agent_tracked_pods")
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "counted", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}},
		},
	})
	waitPod(t, ns, pod.Name, "running", 60*time.Second, phaseIs(v1.PodRunning))

	fams := agentMetrics(t)
	for _, op := range []string{"run_podsandbox", "create_container", "start_container", "list_podsandbox", "list_containers", "status", "image_status"} {
		if n := metricSum(fams, "kubelet_runtime_operations_total", "operation_type="+op); n < 1 {
			t.Errorf("kubelet_runtime_operations_total{operation_type=%q} = %v, want at least 1", op, n)
		}
	}
	if _, ok := fams["kubelet_runtime_operations_duration_seconds"]; !ok {
		t.Error("no kubelet_runtime_operations_duration_seconds")
	}
	if _, ok := fams["kubelet_runtime_operations_errors_total"]; !ok {
		// A counter vector shows only once an operation failed; the
		// first start's ContainerStatus of a missing container
		// usually does. Its absence is no failure.
		t.Log("no kubelet_runtime_operations_errors_total series yet")
	}
	if n := metricSum(fams, "workqueue_adds_total", "name=pod_workers"); n < 1 {
		t.Errorf("workqueue_adds_total{name=\"pod_workers\"} = %v, want at least 1", n)
	}
	for _, name := range []string{"workqueue_depth", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
		"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds", "workqueue_retries_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if n := metricSum(fams, "ephemeral_agent_tracked_pods"); n < before+1 {
		t.Errorf("ephemeral_agent_tracked_pods = %v with the pod running, want at least %v", n, before+1)
	}

	if err := client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, ns, pod.Name, 60*time.Second)
	waitFor(t, "tracked pods back to the count before the pod", 60*time.Second, func(context.Context) (bool, error) {
		return metricSum(agentMetrics(t), "ephemeral_agent_tracked_pods") == before, nil
	})
	if n := metricSum(agentMetrics(t), "kubelet_runtime_operations_total", "operation_type=remove_podsandbox"); n < 1 {
		t.Errorf("kubelet_runtime_operations_total{operation_type=\"remove_podsandbox\"} = %v after the pod went, want at least 1", n)
	}
}
