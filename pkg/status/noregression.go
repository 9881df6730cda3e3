package status

import (
	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// NoRegression changes new, the status about to be sent for pod, so that
// no container's status goes backwards from old, the status the API holds:
//
//   - A container that never runs again once terminated keeps its old
//     Terminated state, container ID included, instead of Running or
//     Waiting. That is every ephemeral container, and a regular or init
//     container whose restart policy (its own, else the pod's) is Never,
//     or OnFailure after exit 0. The API server refuses those transitions
//     ("may not be transitioned to non-terminated state"), and a status it
//     refuses carries nothing else of the pod either.
//   - Such a container that ran keeps its old Running state instead of
//     Waiting: it is never started again, so Waiting (the default of a
//     container the runtime no longer shows) would tell a start that is
//     not coming.
//   - Their restart counts never go down, and an ephemeral container's is
//     0: it is never restarted.
//   - A terminal phase (Succeeded, Failed) stays: nothing runs again in
//     the pod. So do its reason and message when new has none (a pod
//     rejected at admission keeps why).
//
// A kept state is the old container status as a whole, so its ready flag,
// image ID and last state agree with it. Containers of one list are
// matched by name; a container new does not name is left out, as it was.
func NoRegression(old, new *v1.PodStatus, pod *v1.Pod) {
	keepContainerStates(old, new, pod)
	keepTerminalPhase(old, new)
}

// keepContainerStates is NoRegression for the container statuses.
func keepContainerStates(old, new *v1.PodStatus, pod *v1.Pod) {
	keepStates(pod, criconfig.ContainerTypeInit, old.InitContainerStatuses, new.InitContainerStatuses)
	keepStates(pod, criconfig.ContainerTypeRegular, old.ContainerStatuses, new.ContainerStatuses)
	keepStates(pod, criconfig.ContainerTypeEphemeral, old.EphemeralContainerStatuses, new.EphemeralContainerStatuses)
}

// keepTerminalPhase keeps a terminal phase of old, and the reason and
// message that say why, unless new gives its own.
func keepTerminalPhase(old, new *v1.PodStatus) {
	if old.Phase == v1.PodSucceeded || old.Phase == v1.PodFailed {
		new.Phase = old.Phase
		if new.Reason == "" && new.Message == "" {
			new.Reason, new.Message = old.Reason, old.Message
		}
	}
}

func keepStates(pod *v1.Pod, typ criconfig.ContainerType, old, new []v1.ContainerStatus) {
	for i := range new {
		ns := &new[i]
		var prev *v1.ContainerStatus
		for j := range old {
			if old[j].Name == ns.Name {
				prev = &old[j]
				break
			}
		}
		if prev == nil {
			continue
		}
		spec := podstate.ContainerSpec(pod, typ, ns.Name)
		switch {
		case prev.State.Terminated != nil && ns.State.Terminated == nil && terminatedIsFinal(pod, typ, spec, prev.State.Terminated.ExitCode):
			*ns = keep(prev)
		case prev.State.Running != nil && ns.State.Waiting != nil && !restartable(pod, typ, spec):
			*ns = keep(prev)
		}
		if !restartable(pod, typ, spec) {
			ns.RestartCount = max(ns.RestartCount, prev.RestartCount)
		}
		if typ == criconfig.ContainerTypeEphemeral {
			ns.RestartCount = 0
		}
	}
}

// keep returns a copy of the old status whose state is kept: exactly as
// the API holds it, so the patch leaves it out.
func keep(old *v1.ContainerStatus) v1.ContainerStatus {
	return *old.DeepCopy()
}

// terminatedIsFinal reports whether a container (spec, nil when the pod
// no longer names it) that terminated with exitCode never runs again, by
// the API server's rule (ValidateContainerStateTransition with
// ContainerRestartRules): an ephemeral container never does; the others
// as podstate.ShouldRestart says.
func terminatedIsFinal(pod *v1.Pod, typ criconfig.ContainerType, spec *v1.Container, exitCode int32) bool {
	if typ == criconfig.ContainerTypeEphemeral || spec == nil {
		return typ == criconfig.ContainerTypeEphemeral
	}
	return !podstate.ShouldRestart(pod, spec, exitCode)
}

// restartable reports whether the container may run again once stopped:
// never an ephemeral container, the others as podstate.Restartable says.
func restartable(pod *v1.Pod, typ criconfig.ContainerType, spec *v1.Container) bool {
	if typ == criconfig.ContainerTypeEphemeral || spec == nil {
		return typ != criconfig.ContainerTypeEphemeral
	}
	return podstate.Restartable(pod, spec)
}
