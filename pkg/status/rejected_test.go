package status

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestRejected(t *testing.T) {
	scheduled := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue}
	started := metav1.NewTime(podstatetest.T0.Add(-60e9))
	now := metav1.NewTime(podstatetest.T0)
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want v1.PodStatus
	}{
		{
			name: "new pod",
			pod:  podstatetest.Pod(),
			want: v1.PodStatus{Phase: v1.PodFailed, Reason: "OutOfcpu", Message: "Pod was rejected: too much", QOSClass: v1.PodQOSBestEffort, StartTime: &now},
		},
		{
			name: "keeps start time, QoS class and others' conditions",
			pod: podstatetest.Pod(func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}
				p.Status.StartTime = &started
				p.Status.Conditions = []v1.PodCondition{scheduled}
			}),
			want: v1.PodStatus{Phase: v1.PodFailed, Reason: "OutOfcpu", Message: "Pod was rejected: too much", QOSClass: v1.PodQOSBurstable,
				StartTime: &started, Conditions: []v1.PodCondition{scheduled}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Rejected(tc.pod, "OutOfcpu", "too much", podstatetest.T0)
			if !apiequality.Semantic.DeepEqual(tc.want, got) {
				t.Errorf("Rejected() = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestManagerRejectedStatusIsFinal(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, cache := newTestManager(t, pod)
	m.RejectPod(pod, "PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS")
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	sent := apiPod(ctx, t, client, pod)
	if sent.Status.Phase != v1.PodFailed || sent.Status.Reason != "PodOSNotSupported" ||
		sent.Status.Message != "Pod was rejected: Failed to admit pod as the OS field doesn't match node OS" || len(sent.Status.ContainerStatuses) != 0 {
		t.Fatalf("sent status %+v, want the rejection", sent.Status)
	}
	cache.Set(sent)
	// A status computed later (from a pod the cache had not updated yet)
	// does not take the rejection back.
	m.SetPodStatus(pod, nil, nil)
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	got := apiPod(ctx, t, client, pod)
	if got.Status.Phase != v1.PodFailed || got.Status.Reason != "PodOSNotSupported" || got.Status.Message != sent.Status.Message {
		t.Errorf("status after a computed one: phase %s reason %q message %q, want the rejection kept", got.Status.Phase, got.Status.Reason, got.Status.Message)
	}
}
