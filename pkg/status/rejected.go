package status

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rejected returns the status of a pod the node rejected at admission, as
// the kubelet's rejectPod sets it: phase Failed, the rejection's reason,
// "Pod was rejected: " and its message, the QoS class, a start time, and
// the conditions others own (PodScheduled) as they are. Nothing of the pod
// ran, so it has no container statuses, addresses or kubelet conditions.
func Rejected(pod *v1.Pod, reason, message string, now time.Time) v1.PodStatus {
	s := v1.PodStatus{
		Phase:     v1.PodFailed,
		Reason:    reason,
		Message:   "Pod was rejected: " + message,
		QOSClass:  qosClass(pod),
		StartTime: pod.Status.StartTime,
	}
	if s.StartTime == nil {
		t := metav1.NewTime(now)
		s.StartTime = &t
	}
	for _, c := range pod.Status.Conditions {
		s.Conditions = append(s.Conditions, *c.DeepCopy())
	}
	return s
}

// RejectPod records the status of a pod the node rejected at admission
// (Rejected) and asks for it to be sent. Its phase Failed is final:
// NoRegression keeps it, with its reason and message, from any status
// computed later.
func (m *Manager) RejectPod(pod *v1.Pod, reason, message string) {
	p := &pending{pod: pod, status: Rejected(pod, reason, message, m.clock.Now())}
	m.mu.Lock()
	m.desired[pod.UID] = p
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}
