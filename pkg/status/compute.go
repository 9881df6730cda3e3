package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// NodeInfo is what a pod status needs to know about the node.
type NodeInfo struct {
	// HostIPs are the node's addresses, primary first.
	HostIPs []string
	// RuntimeName prefixes container IDs, e.g. "containerd" gives
	// containerd://ID.
	RuntimeName string
}

// Compute returns the pod status the runtime's state implies: phase,
// conditions, addresses and one status per container of the spec (init,
// regular, ephemeral). waiting holds the reasons of containers that failed
// to start or wait for backoff. It is a pure function: the status the pod
// has in the API is only read for what the agent does not own (start time,
// PodScheduled, a terminal phase already reached).
func Compute(pod *v1.Pod, state *podstate.PodState, waiting map[podstate.ContainerKey]podstate.Waiting, node NodeInfo, now time.Time) v1.PodStatus {
	if state == nil {
		state = &podstate.PodState{}
	}
	old := pod.Status
	s := v1.PodStatus{
		StartTime: old.StartTime,
		QOSClass:  qosClass(pod),
	}
	if s.StartTime == nil {
		t := metav1.NewTime(now)
		s.StartTime = &t
	}
	for _, ip := range node.HostIPs {
		s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip})
	}
	if len(node.HostIPs) > 0 {
		s.HostIP = node.HostIPs[0]
	}
	podIPs := podIPs(pod, state, node)
	for _, ip := range podIPs {
		s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
	}
	if len(podIPs) > 0 {
		s.PodIP = podIPs[0]
	}

	initDone := podstate.InitDone(pod, state)
	c := containerStatuses{pod: pod, state: state, waiting: waiting, node: node, initDone: initDone}
	for i := range pod.Spec.InitContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, c.status(criconfig.ContainerTypeInit, &pod.Spec.InitContainers[i]))
	}
	for i := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, c.status(criconfig.ContainerTypeRegular, &pod.Spec.Containers[i]))
	}
	for i := range pod.Spec.EphemeralContainers {
		spec := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		s.EphemeralContainerStatuses = append(s.EphemeralContainerStatuses, c.status(criconfig.ContainerTypeEphemeral, &spec))
	}
	sort.Slice(s.EphemeralContainerStatuses, func(i, j int) bool {
		return s.EphemeralContainerStatuses[i].Name < s.EphemeralContainerStatuses[j].Name
	})

	s.Phase = phase(pod, state, s.InitContainerStatuses, s.ContainerStatuses)
	if old.Phase == v1.PodSucceeded || old.Phase == v1.PodFailed {
		// A terminal phase is final: nothing runs again in this pod.
		s.Phase = old.Phase
	}
	s.Conditions = conditions(pod, state, &s, now)
	return s
}

type containerStatuses struct {
	pod      *v1.Pod
	state    *podstate.PodState
	waiting  map[podstate.ContainerKey]podstate.Waiting
	node     NodeInfo
	initDone bool
}

func (c *containerStatuses) status(typ criconfig.ContainerType, spec *v1.Container) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: spec.Name, Image: spec.Image}
	instances := c.state.Instances(typ, spec.Name)
	w, hasWaiting := c.waiting[podstate.ContainerKey{Type: typ, Name: spec.Name}]
	if len(instances) == 0 {
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: c.defaultWaitingReason(typ)}
		if hasWaiting {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		}
		return cs
	}
	cur := instances[0]
	cs.ContainerID = c.containerID(cur.ID)
	cs.ImageID = cur.ImageRef
	if typ != criconfig.ContainerTypeEphemeral {
		cs.RestartCount = int32(cur.Attempt)
	}
	switch {
	case cur.Running():
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.StartedAt)}
		started := true
		cs.Started = &started
		// No probes yet: a running regular container is ready.
		cs.Ready = typ == criconfig.ContainerTypeRegular || (typ == criconfig.ContainerTypeInit && podstate.IsSidecar(spec))
		if len(instances) > 1 && instances[1].Exited() {
			cs.LastTerminationState.Terminated = terminated(instances[1], c.containerID(instances[1].ID))
		}
	case cur.Exited():
		t := terminated(cur, cs.ContainerID)
		if hasWaiting {
			// Waiting to restart: the exit becomes the last state.
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
			cs.LastTerminationState.Terminated = t
		} else {
			cs.State.Terminated = t
			if len(instances) > 1 && instances[1].Exited() {
				cs.LastTerminationState.Terminated = terminated(instances[1], c.containerID(instances[1].ID))
			}
		}
		started := false
		cs.Started = &started
	default:
		reason := "ContainerCreating"
		msg := ""
		if hasWaiting {
			reason, msg = w.Reason, w.Message
		}
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
		started := false
		cs.Started = &started
	}
	return cs
}

// defaultWaitingReason is the kubelet's reason for a container that has no
// runtime container yet: PodInitializing while init containers run.
func (c *containerStatuses) defaultWaitingReason(typ criconfig.ContainerType) string {
	if typ == criconfig.ContainerTypeInit {
		return "PodInitializing"
	}
	if len(c.pod.Spec.InitContainers) > 0 && (!c.initDone || typ == criconfig.ContainerTypeEphemeral) {
		return "PodInitializing"
	}
	return "ContainerCreating"
}

func (c *containerStatuses) containerID(id string) string {
	name := c.node.RuntimeName
	if name == "" {
		name = "containerd"
	}
	return name + "://" + id
}

// terminated is the kubelet's Terminated state of an exited container.
func terminated(c *podstate.Container, id string) *v1.ContainerStateTerminated {
	reason := c.Reason
	switch {
	case reason == "OOMKilled":
	case c.ExitCode == 0:
		reason = "Completed"
	default:
		reason = "Error"
	}
	return &v1.ContainerStateTerminated{
		ExitCode:    c.ExitCode,
		Reason:      reason,
		Message:     c.Message,
		StartedAt:   metav1.NewTime(c.StartedAt),
		FinishedAt:  metav1.NewTime(c.FinishedAt),
		ContainerID: id,
	}
}

func podIPs(pod *v1.Pod, state *podstate.PodState, node NodeInfo) []string {
	if pod.Spec.HostNetwork {
		return node.HostIPs
	}
	if sb := state.LatestSandbox(); sb != nil && sb.Ready {
		return sb.IPs
	}
	// A stopped sandbox keeps the addresses it had, as the kubelet reports.
	var out []string
	for _, ip := range pod.Status.PodIPs {
		out = append(out, ip.IP)
	}
	return out
}

// phase follows the kubelet's getPhase for the containers' states.
func phase(pod *v1.Pod, state *podstate.PodState, inits, regulars []v1.ContainerStatus) v1.PodPhase {
	for i, s := range inits {
		sidecar := podstate.IsSidecar(&pod.Spec.InitContainers[i])
		if !sidecar && pod.Spec.RestartPolicy == v1.RestartPolicyNever && s.State.Terminated != nil && s.State.Terminated.ExitCode != 0 {
			return v1.PodFailed
		}
	}
	if !podstate.InitDone(pod, state) {
		return v1.PodPending
	}
	var running, waiting, succeeded, failed, neverRan int
	for _, s := range regulars {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				waiting++ // restarting
			} else {
				neverRan++
			}
		}
	}
	switch {
	case neverRan > 0:
		return v1.PodPending
	case running > 0 || waiting > 0:
		return v1.PodRunning
	case len(regulars) == 0:
		return v1.PodPending
	}
	// Every container exited.
	switch pod.Spec.RestartPolicy {
	case v1.RestartPolicyAlways:
		return v1.PodRunning
	case v1.RestartPolicyOnFailure:
		if failed > 0 {
			return v1.PodRunning
		}
		return v1.PodSucceeded
	default:
		if failed > 0 {
			return v1.PodFailed
		}
		return v1.PodSucceeded
	}
}

// conditions returns the pod conditions the kubelet owns, keeping the
// transition time of each from the pod's current status when its status
// did not change, and any condition the agent does not own (PodScheduled,
// readiness gates' types) as it is.
func conditions(pod *v1.Pod, state *podstate.PodState, s *v1.PodStatus, now time.Time) []v1.PodCondition {
	sb := state.LatestSandbox()
	sandboxReady := sb != nil && sb.Ready
	var notInit, notReady []string
	if !podstate.InitDone(pod, state) {
		for _, cs := range s.InitContainerStatuses {
			done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
			sidecarUp := cs.State.Running != nil && cs.Ready
			if !done && !sidecarUp {
				notInit = append(notInit, cs.Name)
			}
		}
	}
	for _, cs := range s.ContainerStatuses {
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}
	want := []v1.PodCondition{
		boolCondition(v1.PodReadyToStartContainers, sandboxReady, "", ""),
		boolCondition(v1.PodInitialized, len(notInit) == 0, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " "))),
	}
	ready := len(notReady) == 0 && s.Phase == v1.PodRunning
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	if s.Phase == v1.PodSucceeded || s.Phase == v1.PodFailed {
		readyReason, readyMsg = "PodCompleted", ""
	}
	want = append(want,
		boolCondition(v1.ContainersReady, ready, readyReason, readyMsg),
		boolCondition(v1.PodReady, ready, readyReason, readyMsg),
	)
	out := make([]v1.PodCondition, 0, len(want)+1)
	owned := map[v1.PodConditionType]bool{}
	for _, w := range want {
		owned[w.Type] = true
		w.LastTransitionTime = metav1.NewTime(now)
		for _, o := range pod.Status.Conditions {
			if o.Type == w.Type && o.Status == w.Status {
				w.LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, w)
	}
	for _, o := range pod.Status.Conditions {
		if !owned[o.Type] {
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return conditionOrder(out[i].Type) < conditionOrder(out[j].Type) })
	return out
}

func conditionOrder(t v1.PodConditionType) int {
	for i, o := range []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled} {
		if t == o {
			return i
		}
	}
	return 100
}

func boolCondition(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
	if ok {
		return v1.PodCondition{Type: t, Status: v1.ConditionTrue}
	}
	return v1.PodCondition{Type: t, Status: v1.ConditionFalse, Reason: reason, Message: msg}
}

// qosClass is the pod's QoS class by the API's rules: Guaranteed when every
// container has equal cpu and memory requests and limits, BestEffort when
// none has any, Burstable otherwise.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}
