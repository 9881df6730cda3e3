//go:build e2e

package e2enode

import (
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestAdmission binds pods the node cannot run straight to it (nodeName
// set, so no scheduler filters them): each fails at once with the
// kubelet's reason (the agent's own for a volume it cannot set up), a
// Warning Event that kubectl describe shows, and nothing in the runtime.
// A pod created after them still runs.
func TestAdmission(t *testing.T) {
	startAgent(t)
	node := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	rs := criClient(t)

	boundPod := func(name string, mutate func(*v1.Pod)) *v1.Pod {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1.PodSpec{
				NodeName:                      testEnv.nodeName,
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers:                    []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}},
			},
		}
		mutate(p)
		return p
	}
	tooMuch := node.Status.Allocatable.Cpu().DeepCopy()
	tooMuch.Add(resource.MustParse("1"))

	for _, tc := range []struct {
		name, reason, message string
		mutate                func(*v1.Pod)
	}{
		{
			name: "windows", reason: "PodOSNotSupported", message: "Failed to admit pod as the OS field doesn't match node OS",
			mutate: func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: v1.Windows} },
		},
		{
			name: "too-much-cpu", reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: " + strconv.FormatInt(tooMuch.MilliValue(), 10),
			mutate: func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: tooMuch}
			},
		},
		{
			name: "csi-volume", reason: "UnsupportedVolume", message: `Volume "data" cannot be set up on this node: volume kind not supported by this node agent: csi`,
			mutate: func(p *v1.Pod) {
				p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "csi.example.com"}}}}
				p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created := createPod(t, boundPod(tc.name, tc.mutate))
			start := time.Now()
			p := waitPod(t, ns, tc.name, "Failed", 20*time.Second, phaseIs(v1.PodFailed))
			t.Logf("failed after %v", time.Since(start))
			if p.Status.Reason != tc.reason || !strings.HasPrefix(p.Status.Message, "Pod was rejected: "+tc.message) {
				t.Errorf("status reason %q message %q, want %q and %q", p.Status.Reason, p.Status.Message, tc.reason, "Pod was rejected: "+tc.message)
			}
			if len(p.Status.ContainerStatuses) != 0 {
				t.Errorf("container statuses %+v for a pod that never ran", p.Status.ContainerStatuses)
			}
			waitEvent(t, created, tc.reason, tc.message)
			out := mustKubectl(t, "-n", ns, "describe", "pod", tc.name)
			if !strings.Contains(out, tc.reason) || !strings.Contains(out, "Warning") {
				t.Errorf("kubectl describe does not show the %s Event:\n%s", tc.reason, out)
			}
			if sbs := criSandboxes(t, rs, string(created.UID)); len(sbs) != 0 {
				t.Errorf("rejected pod has %d CRI sandboxes", len(sbs))
			}
		})
	}

	t.Run("DebuggerOfARejectedPodNeverRuns", func(t *testing.T) {
		p := waitPod(t, ns, "too-much-cpu", "Failed", 20*time.Second, phaseIs(v1.PodFailed))
		addEphemeral(t, p, debugContainer("debug", "app", "sleep", "3600"))
		time.Sleep(5 * time.Second)
		if cs := criContainers(t, rs, string(p.UID), ""); len(cs) != 0 {
			t.Errorf("rejected pod has %d CRI containers after a debugger was added", len(cs))
		}
		p = waitPod(t, ns, "too-much-cpu", "Failed", 5*time.Second, phaseIs(v1.PodFailed))
		if s := ephemeralStatus(p, "debug"); s != nil && (s.State.Running != nil || s.State.Terminated != nil) {
			t.Errorf("debugger status %+v, want none: nothing of a rejected pod runs", s)
		}
		if p.Status.Reason != "OutOfcpu" {
			t.Errorf("status reason %q after the debugger was added, want OutOfcpu kept", p.Status.Reason)
		}
	})

	t.Run("LaterPodRuns", func(t *testing.T) {
		createPod(t, boundPod("normal", func(*v1.Pod) {}))
		waitPod(t, ns, "normal", "Ready", 60*time.Second, podReady)
	})

	t.Run("RejectedPodIsDeletedAtOnce", func(t *testing.T) {
		mustKubectl(t, "-n", ns, "delete", "pod", "windows", "--wait=false")
		waitPodGone(t, ns, "windows", 20*time.Second)
	})
}
