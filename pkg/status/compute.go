package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

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
// regular, ephemeral). state.Probes, when set, says which running
// containers have started and are ready. waiting holds the reasons of
// containers that failed to start or wait for backoff. It is a pure
// function. The status the pod
// has in the API (pod.Status) is read for what the agent does not own
// (start time, PodScheduled), for what the runtime may have lost (an
// ephemeral container's reported state, see lostEphemeral) and to never
// go backwards from it (NoRegression, applied before the phase and the
// conditions are derived, so they agree with the kept states).
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
	c := containerStatuses{pod: pod, state: state, waiting: waiting, node: node, initDone: initDone, now: now}
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

	keepContainerStates(&old, &s, pod)
	s.Phase = phase(pod, state, s.InitContainerStatuses, s.ContainerStatuses)
	keepTerminalPhase(&old, &s)
	// Past its active deadline the pod failed, whatever its containers
	// did, as the kubelet's eviction says; a pod that had already ended
	// otherwise keeps how it ended.
	terminal := old.Phase == v1.PodSucceeded || old.Phase == v1.PodFailed
	if podstate.PastActiveDeadline(pod, now) && (!terminal || old.Reason == podstate.ReasonDeadlineExceeded) {
		s.Phase, s.Reason, s.Message = v1.PodFailed, podstate.ReasonDeadlineExceeded, podstate.MessageDeadlineExceeded
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
	now      time.Time
}

func (c *containerStatuses) status(typ criconfig.ContainerType, spec *v1.Container) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: spec.Name, Image: spec.Image}
	instances := c.state.Instances(typ, spec.Name)
	w, hasWaiting := c.waiting[podstate.ContainerKey{Type: typ, Name: spec.Name}]
	if len(instances) == 0 && typ == criconfig.ContainerTypeEphemeral {
		if e := podstate.EphemeralNeverRun(c.pod, c.state, spec.Name); e != nil {
			return c.neverRun(cs, e)
		}
	}
	if len(instances) == 0 && typ == criconfig.ContainerTypeEphemeral && podstate.EphemeralCreated(c.pod, c.state, spec.Name) {
		return c.lostEphemeral(cs)
	}
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
	var ended *podstate.Ending
	if typ == criconfig.ContainerTypeEphemeral {
		ended = c.state.AgentEnding(cur)
	}
	switch {
	case ended != nil && cur.Exited():
		// Stopped by the agent: the exit code is the container's, the
		// reason and message say why the agent stopped it.
		t := terminated(cur, cs.ContainerID)
		t.Reason, t.Message = ended.Reason, ended.Message
		cs.State.Terminated = t
		started := false
		cs.Started = &started
	case ended != nil && (cur.Created() || c.state.Replaced(cur)):
		// Ended before it ever started (created, or to be created again):
		// it never will.
		id := cs.ContainerID
		if c.state.Replaced(cur) {
			cs.ImageID = ""
		}
		out := c.neverRun(cs, ended)
		out.ContainerID, out.State.Terminated.ContainerID = id, id
		return out
	case typ == criconfig.ContainerTypeEphemeral && c.state.Replaced(cur):
		// The plan creates it again: its aborted start is not its exit.
		// The container ID is left out, as that container is removed.
		cs.ContainerID, cs.ImageID = "", ""
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
		if hasWaiting {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		}
		started := false
		cs.Started = &started
	case typ == criconfig.ContainerTypeEphemeral && cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		// An ephemeral container is never started again, so a state the
		// runtime cannot tell is an end, as the kubelet reports a
		// container it lost track of.
		t := &v1.ContainerStateTerminated{
			ExitCode:    unknownExitCode,
			Reason:      ReasonContainerStatusUnknown,
			Message:     MessageContainerStatusUnknown,
			ContainerID: cs.ContainerID,
			FinishedAt:  metav1.NewTime(c.now),
		}
		if !cur.StartedAt.IsZero() {
			t.StartedAt = metav1.NewTime(cur.StartedAt)
		}
		cs.State.Terminated = c.reportedTerminated(spec.Name, t)
		if id := cs.State.Terminated.ContainerID; id != "" {
			cs.ContainerID = id
		}
		started := false
		cs.Started = &started
	case cur.Running():
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.StartedAt)}
		started := true
		// A running regular container or sidecar is ready, unless its
		// probes say otherwise (state.Probes, nil when none run): not
		// started until its startup probe succeeds, not ready until its
		// readiness probe does.
		probed := typ == criconfig.ContainerTypeRegular || (typ == criconfig.ContainerTypeInit && podstate.IsSidecar(spec))
		cs.Ready = probed
		if probed && c.state.Probes != nil {
			p := c.state.Probes[cur.ID]
			started, cs.Ready = p.Started, p.Ready
		}
		cs.Started = &started
		if len(instances) > 1 && instances[1].Exited() {
			cs.LastTerminationState.Terminated = terminated(instances[1], c.containerID(instances[1].ID))
		}
	case cur.Exited():
		t := terminated(cur, cs.ContainerID)
		// An ephemeral container never restarts: a reason from the start
		// that just failed (RunContainerError) does not hide how it ended
		// (StartError and the runtime's message).
		if hasWaiting && typ != criconfig.ContainerTypeEphemeral {
			// Waiting to restart: the exit becomes the last state.
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
			cs.LastTerminationState.Terminated = t
		} else {
			cs.State.Terminated = t
			if len(instances) > 1 && instances[1].Exited() {
				cs.LastTerminationState.Terminated = terminated(instances[1], c.containerID(instances[1].ID))
			}
			// An init container that completed is ready, as the kubelet
			// reports it: it did what the pod waited for.
			cs.Ready = typ == criconfig.ContainerTypeInit && !podstate.IsSidecar(spec) && t.ExitCode == 0
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

// Reasons and messages of the Terminated state of an ephemeral container
// the runtime lost or cannot tell the state of. The reason, message and
// exit code of an unknown state are the kubelet's (kubelet_pods.go,
// convertToAPIContainerStatuses), so the tools that know them read ours.
const (
	// ReasonContainerStatusUnknown is the kubelet's reason for a container
	// whose state is lost.
	ReasonContainerStatusUnknown = "ContainerStatusUnknown"
	// MessageContainerStatusUnknown is the kubelet's message for a
	// container in the runtime's CONTAINER_UNKNOWN state.
	MessageContainerStatusUnknown = "The container could not be located when the pod was terminated"
	// MessageEphemeralLost is the message for an ephemeral container that
	// was created once and that the runtime no longer has (crictl rm, a
	// wiped runtime state): it is not created again, and says why.
	MessageEphemeralLost = "The container was removed from the container runtime; an ephemeral container is never started twice"
	// unknownExitCode is 128+SIGKILL, the kubelet's exit code for a lost
	// container: it ended, by no exit the runtime saw.
	unknownExitCode = 137
)

// lostEphemeral is the status of an ephemeral container that was created
// once (podstate.EphemeralCreated) and that the runtime no longer has. The
// plan never creates it again, so it is over: Terminated, keeping a
// terminated state the API already holds (so the status is stable from
// one sync to the next), else ContainerStatusUnknown with what the reported
// status and the start record still know of it.
func (c *containerStatuses) lostEphemeral(cs v1.ContainerStatus) v1.ContainerStatus {
	started := false
	cs.Started = &started
	rep := podstate.ReportedEphemeral(c.pod, cs.Name)
	t := &v1.ContainerStateTerminated{
		ExitCode:   unknownExitCode,
		Reason:     ReasonContainerStatusUnknown,
		Message:    MessageEphemeralLost,
		FinishedAt: metav1.NewTime(c.now),
	}
	// The reported status names the container the API saw; the record,
	// the one created last.
	if r, ok := c.state.Records[cs.Name]; ok && r.ContainerID != "" {
		cs.ContainerID = c.containerID(r.ContainerID)
	}
	if rep != nil {
		if rep.ContainerID != "" {
			cs.ContainerID = rep.ContainerID
		}
		cs.ImageID = rep.ImageID
		if rep.State.Running != nil {
			t.StartedAt = rep.State.Running.StartedAt
		}
	}
	t.ContainerID = cs.ContainerID
	cs.State.Terminated = c.reportedTerminated(cs.Name, t)
	if id := cs.State.Terminated.ContainerID; id != "" {
		cs.ContainerID = id
	}
	return cs
}

// neverRunExitCode is the exit code of a debug container that never ran,
// the runtime's for a start it refused (StartError): no process exited.
const neverRunExitCode = 128

// neverRun is the status of a debug container the agent ended before it
// ran: the policy denied it, or a stop was requested first. Terminated,
// never started, with the agent's reason and message; the terminated
// state the API already holds is kept, so it is made up once.
func (c *containerStatuses) neverRun(cs v1.ContainerStatus, e *podstate.Ending) v1.ContainerStatus {
	started := false
	cs.Started = &started
	cs.State = v1.ContainerState{Terminated: c.reportedTerminated(cs.Name, &v1.ContainerStateTerminated{
		ExitCode:   neverRunExitCode,
		Reason:     e.Reason,
		Message:    e.Message,
		FinishedAt: metav1.NewTime(e.At),
	})}
	return cs
}

// reportedTerminated returns the terminated state the pod's status already
// holds for ephemeral container name, exactly, or t when it holds none: a
// state the agent made up (FinishedAt is when it noticed) is made up once.
func (c *containerStatuses) reportedTerminated(name string, t *v1.ContainerStateTerminated) *v1.ContainerStateTerminated {
	if rep := podstate.ReportedEphemeral(c.pod, name); rep != nil && rep.State.Terminated != nil {
		return rep.State.Terminated.DeepCopy()
	}
	return t
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

// containerID is the status's form of a CRI container ID, RUNTIME://ID.
func (c *containerStatuses) containerID(id string) string {
	if strings.Contains(id, "://") {
		return id
	}
	name := c.node.RuntimeName
	if name == "" {
		name = "containerd"
	}
	return name + "://" + id
}

// terminated is the kubelet's Terminated state of an exited container. The
// runtime's reason is kept, as the kubelet keeps it: it is the one that
// tells a start the runtime refused (StartError, exit 128, with its
// message) or a kill (OOMKilled) from the process's own exit. Completed
// (exit 0) and Error are for a runtime that gives none.
func terminated(c *podstate.Container, id string) *v1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = podstate.ExitReason(c.ExitCode, false)
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

// phase follows the kubelet's getPhase with ContainerRestartRules (on in
// 1.37): a container that will restart (podstate.ShouldRestart: its own
// restart rules and policy, else the pod's) keeps the pod Running; one
// that will not counts as final, whatever the pod's restart policy.
func phase(pod *v1.Pod, state *podstate.PodState, inits, regulars []v1.ContainerStatus) v1.PodPhase {
	// lastExit is the exit a container status reports: its terminated
	// state, or the last one of a container waiting to restart.
	lastExit := func(s v1.ContainerStatus) (int32, bool) {
		switch {
		case s.State.Terminated != nil:
			return s.State.Terminated.ExitCode, true
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			return s.LastTerminationState.Terminated.ExitCode, true
		}
		return 0, false
	}
	var pendingInit, failedInit int
	var running, waiting, stopped, final, succeeded int
	for i, s := range inits {
		c := &pod.Spec.InitContainers[i]
		code, exited := lastExit(s)
		switch {
		case podstate.IsSidecar(c):
			// An exited sidecar restarts and does not count for the phase.
			// Until it has started, podstate.InitDone holds the pod in
			// Pending.
			switch {
			case s.State.Running != nil:
				running++
			case !exited:
				waiting++
			}
		case !exited:
			pendingInit++
		case code != 0 && !podstate.ShouldRestart(pod, c, code):
			failedInit++
		}
	}
	for i, s := range regulars {
		c := &pod.Spec.Containers[i]
		code, exited := lastExit(s)
		switch {
		case s.State.Running != nil:
			running++
		case exited:
			stopped++
			if !podstate.ShouldRestart(pod, c, code) {
				final++
			}
			if s.State.Terminated != nil && code == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	switch {
	case failedInit > 0:
		return v1.PodFailed
	case pendingInit > 0 || !podstate.InitDone(pod, state) || waiting > 0:
		// An init container runs or waits (in the newest sandbox), or a
		// container has not run yet.
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped == 0:
		return v1.PodPending
	case stopped != final:
		// Every container exited, and at least one restarts.
		return v1.PodRunning
	case stopped == succeeded:
		return v1.PodSucceeded
	}
	return v1.PodFailed
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
			// A sidecar counts once it has started (its startup probe
			// succeeded), as the kubelet's Initialized condition.
			sidecarUp := cs.State.Running != nil && cs.Started != nil && *cs.Started
			if !done && !sidecarUp {
				notInit = append(notInit, cs.Name)
			}
		}
	}
	// Sidecars count for readiness too, as the kubelet's: their readiness
	// probes matter.
	for i, cs := range s.InitContainerStatuses {
		if i < len(pod.Spec.InitContainers) && podstate.IsSidecar(&pod.Spec.InitContainers[i]) && !cs.Ready {
			notReady = append(notReady, cs.Name)
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
	podReady := boolCondition(v1.PodReady, ready, readyReason, readyMsg)
	if ready {
		podReady = readinessGates(pod)
	}
	want = append(want, boolCondition(v1.ContainersReady, ready, readyReason, readyMsg), podReady)
	out := make([]v1.PodCondition, 0, len(want)+1)
	for _, w := range want {
		w.LastTransitionTime = metav1.NewTime(now)
		for _, o := range pod.Status.Conditions {
			if o.Type == w.Type && o.Status == w.Status {
				w.LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, w)
	}
	for _, o := range pod.Status.Conditions {
		if !ownsCondition(o.Type) {
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return conditionOrder(out[i].Type) < conditionOrder(out[j].Type) })
	return out
}

// ReasonReadinessGatesNotReady is the kubelet's reason for a pod whose
// containers are ready but not all of its readiness gates.
const ReasonReadinessGatesNotReady = "ReadinessGatesNotReady"

// readinessGates is the Ready condition of a pod whose containers are
// ready: True once every condition its spec.readinessGates name is True in
// its status (set by whoever owns the gate, through the API), with the
// kubelet's messages for those that are not.
func readinessGates(pod *v1.Pod) v1.PodCondition {
	var unready []string
	for _, rg := range pod.Spec.ReadinessGates {
		var c *v1.PodCondition
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == rg.ConditionType {
				c = &pod.Status.Conditions[i]
				break
			}
		}
		switch {
		case c == nil:
			unready = append(unready, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(rg.ConditionType)))
		case c.Status != v1.ConditionTrue:
			unready = append(unready, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(rg.ConditionType), c.Status))
		}
	}
	return boolCondition(v1.PodReady, len(unready) == 0, ReasonReadinessGatesNotReady, strings.Join(unready, ", "))
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
