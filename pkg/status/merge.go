package status

import (
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ownsCondition reports whether the agent owns the pod condition type: the
// ones Compute derives from the runtime, which the kubelet owns too
// (kubetypes.PodConditionByKubelet). Every other type belongs to someone
// else: readiness gates' types, DisruptionTarget (the eviction and
// disruption controllers; the agent evicts nothing), PodScheduled (the
// scheduler: the agent does not generate it, unlike the kubelet), the
// resize conditions (the agent resizes nothing).
func ownsCondition(t v1.PodConditionType) bool {
	switch t {
	case v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady:
		return true
	}
	return false
}

// Merge returns the status to send for pod: status, computed by the agent
// from a pod read earlier, laid over latest, the newest status the API
// holds (as the agent's cache last saw it). What the agent owns comes from
// status: phase, reason, message, addresses, start time, QoS class, the
// container statuses and the conditions ownsCondition names. Everything
// else comes from latest, as the kubelet's mergePodStatus does at patch
// time: other writers' conditions, the nominated node, resource claim
// statuses, the observed generation, and any field this agent does not
// know. So a condition another writer set, changed or removed while a sync
// ran is neither reverted nor brought back by the patch.
//
// The Ready condition of a pod with readiness gates whose containers are
// ready depends on those other writers' conditions: it is derived again
// from latest's, at now when its status changes, so the patch never
// contradicts the gates it carries. A terminal pod is never sent ready
// (ContainersReady and Ready false, reason PodCompleted), as the kubelet's
// mergePodStatus says. It is pure.
func Merge(pod *v1.Pod, latest, status *v1.PodStatus, now time.Time) *v1.PodStatus {
	out := latest.DeepCopy()
	s := status.DeepCopy()
	out.Phase, out.Reason, out.Message = s.Phase, s.Reason, s.Message
	out.HostIP, out.HostIPs = s.HostIP, s.HostIPs
	out.PodIP, out.PodIPs = s.PodIP, s.PodIPs
	out.StartTime, out.QOSClass = s.StartTime, s.QOSClass
	out.InitContainerStatuses = s.InitContainerStatuses
	out.ContainerStatuses = s.ContainerStatuses
	out.EphemeralContainerStatuses = s.EphemeralContainerStatuses

	conds := make([]v1.PodCondition, 0, len(s.Conditions)+len(latest.Conditions))
	for _, c := range s.Conditions {
		if ownsCondition(c.Type) {
			conds = append(conds, c)
		}
	}
	for _, c := range out.Conditions {
		if !ownsCondition(c.Type) {
			conds = append(conds, c)
		}
	}
	sort.SliceStable(conds, func(i, j int) bool { return conditionOrder(conds[i].Type) < conditionOrder(conds[j].Type) })
	out.Conditions = conds
	regateReady(pod, latest, out, now)
	unreadyTerminal(latest, out, now)
	return out
}

// othersEqual reports whether a and b agree on what others than the agent
// own in a pod status: everything Merge takes from the API's status.
func othersEqual(a, b *v1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(others(a), others(b))
}

// others returns s without what the agent owns, what Merge takes from the
// status the agent computed.
func others(s *v1.PodStatus) *v1.PodStatus {
	out := *s
	out.Phase, out.Reason, out.Message = "", "", ""
	out.HostIP, out.HostIPs = "", nil
	out.PodIP, out.PodIPs = "", nil
	out.StartTime, out.QOSClass = nil, ""
	out.InitContainerStatuses, out.ContainerStatuses, out.EphemeralContainerStatuses = nil, nil, nil
	out.Conditions = nil
	for _, c := range s.Conditions {
		if !ownsCondition(c.Type) {
			out.Conditions = append(out.Conditions, c)
		}
	}
	return &out
}

// unreadyTerminal makes a terminal pod's ContainersReady and Ready false,
// as the kubelet's mergePodStatus does: a phase kept from the API
// (NoRegression) may end a pod whose status was computed running.
func unreadyTerminal(latest, out *v1.PodStatus, now time.Time) {
	if out.Phase != v1.PodSucceeded && out.Phase != v1.PodFailed {
		return
	}
	for _, t := range []v1.PodConditionType{v1.ContainersReady, v1.PodReady} {
		c := findPodCondition(out.Conditions, t)
		if c == nil || c.Status != v1.ConditionTrue {
			continue
		}
		unready := boolCondition(t, false, "PodCompleted", "")
		unready.ObservedGeneration = c.ObservedGeneration
		unready.LastTransitionTime = metav1.NewTime(now)
		if l := findPodCondition(latest.Conditions, t); l != nil && l.Status == unready.Status {
			unready.LastTransitionTime = l.LastTransitionTime
		}
		*c = unready
	}
}

// regateReady derives out's Ready condition again from the readiness gates'
// conditions out now carries, when the pod has gates and its containers are
// ready (otherwise Ready does not depend on the gates). Its transition time
// is kept from the computed condition or from latest's when the status
// stays, else it is now.
func regateReady(pod *v1.Pod, latest, out *v1.PodStatus, now time.Time) {
	if len(pod.Spec.ReadinessGates) == 0 || out.Phase != v1.PodRunning {
		return
	}
	cr, ready := findPodCondition(out.Conditions, v1.ContainersReady), findPodCondition(out.Conditions, v1.PodReady)
	if cr == nil || cr.Status != v1.ConditionTrue || ready == nil {
		return
	}
	gated := readinessGates(&v1.Pod{
		Spec:   v1.PodSpec{ReadinessGates: pod.Spec.ReadinessGates},
		Status: v1.PodStatus{Conditions: out.Conditions},
	})
	latestReady := findPodCondition(latest.Conditions, v1.PodReady)
	switch {
	case gated.Status == ready.Status:
		gated.LastTransitionTime = ready.LastTransitionTime
	case latestReady != nil && latestReady.Status == gated.Status:
		gated.LastTransitionTime = latestReady.LastTransitionTime
	default:
		gated.LastTransitionTime = metav1.NewTime(now)
	}
	gated.ObservedGeneration = ready.ObservedGeneration
	*ready = gated
}

func findPodCondition(cs []v1.PodCondition, t v1.PodConditionType) *v1.PodCondition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

// normalize truncates status's times to the whole seconds the API keeps
// of them (metav1.Time serializes as RFC 3339), as the kubelet's status
// manager does: a status computed with nanoseconds never equals the one
// the API server returns, and every sync would send the same status
// again.
func normalize(status *v1.PodStatus) {
	if status.StartTime != nil {
		t := status.StartTime.Rfc3339Copy()
		status.StartTime = &t
	}
	for i := range status.Conditions {
		c := &status.Conditions[i]
		c.LastProbeTime = c.LastProbeTime.Rfc3339Copy()
		c.LastTransitionTime = c.LastTransitionTime.Rfc3339Copy()
	}
	for _, list := range [][]v1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses, status.EphemeralContainerStatuses} {
		for i := range list {
			normalizeState(&list[i].State)
			normalizeState(&list[i].LastTerminationState)
		}
	}
}

func normalizeState(s *v1.ContainerState) {
	if s.Running != nil {
		s.Running.StartedAt = s.Running.StartedAt.Rfc3339Copy()
	}
	if s.Terminated != nil {
		s.Terminated.StartedAt = s.Terminated.StartedAt.Rfc3339Copy()
		s.Terminated.FinishedAt = s.Terminated.FinishedAt.Rfc3339Copy()
	}
}
