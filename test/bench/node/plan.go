package node

import (
	"fmt"
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// RunLabel marks the bench's namespaces and pods; its value is the run's id.
const RunLabel = "ephemeral-bench/run"

// Counts are the sizes of the workloads (issue 13's table at scale 1).
type Counts struct {
	// Sequential pods get one debug container at a time.
	Sequential int
	// Concurrent pods get debug containers InFlight at a time.
	Concurrent int
	InFlight   int
	// Idle pods, each with an app and a running debug container, while the
	// agent's idle cost is measured.
	Idle int
	// FewPods and ManyPods are the pods on the node for the pod-count
	// comparison, PodCountRequests the debug requests measured at each.
	FewPods, ManyPods, PodCountRequests int
}

// ScaledCounts returns the sizes times scale, each at least 2 (so
// that a quick trial still exercises every step) and never fewer idle or
// many pods than the workloads measured among them need.
func ScaledCounts(scale float64) Counts {
	s := func(n int) int { return max(2, int(math.Round(float64(n)*scale))) }
	c := Counts{
		Sequential: s(40), Concurrent: s(100), InFlight: s(20), Idle: s(108),
		FewPods: s(10), ManyPods: s(250), PodCountRequests: s(40),
	}
	c.InFlight = min(c.InFlight, c.Concurrent)
	c.Idle = max(c.Idle, c.Concurrent)
	c.ManyPods = max(c.ManyPods, c.Idle+c.FewPods)
	return c
}

// podName is the i-th bench pod's name.
func podName(i int) string { return fmt.Sprintf("p%03d", i) }

// benchPod is a pod bound to node: an app container sleeping, no token.
// One second of grace: a pod with none would leave the API at once, before
// the node agent stopped its containers, and the next workload would share
// the node with the teardown (sleep ignores SIGTERM as pid 1, so each pod
// takes that second, pods in parallel).
func benchPod(ns, name, node, image, runID string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{RunLabel: runID}},
		Spec: v1.PodSpec{
			NodeName: node,
			Containers: []v1.Container{{
				Name: "app", Image: image, ImagePullPolicy: v1.PullNever,
				Command: []string{"sleep", "3600"},
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			// Whatever taints the node has, the bench's pods stay.
			Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
		},
	}
}

// debugContainer is the ephemeral container of a request: sleeping when
// Running is awaited, `true` when Terminated is.
func debugContainer(name, image string, want state) v1.EphemeralContainer {
	cmd := []string{"sleep", "3600"}
	if want == terminated {
		cmd = []string{"true"}
	}
	return v1.EphemeralContainer{EphemeralContainerCommon: v1.EphemeralContainerCommon{
		Name: name, Image: image, ImagePullPolicy: v1.PullNever, Command: cmd,
		TerminationMessagePolicy: v1.TerminationMessageReadFile,
	}}
}

// benchNamespace is a namespace of the run.
func benchNamespace(name, runID string) *v1.Namespace {
	return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{RunLabel: runID}}}
}
