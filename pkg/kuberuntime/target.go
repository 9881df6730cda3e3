package kuberuntime

import (
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// targetUnsupported holds back an ephemeral container that would join its
// target container's PID namespace on a node whose TARGET preflight proved
// that the runtime does not share it: the debugger would run, see none of
// the target's processes, and nothing would say why. It waits with reason
// TargetNamespaceUnsupported instead, with one Warning Event (the pod's
// reported status remembers that it was told), before any image is pulled
// or container created. The sync is retried with backoff like any failed
// start; the result does not change until the agent restarts.
func (p *podSync) targetUnsupported(st StartAction) (podstate.Waiting, error) {
	if st.Type != criconfig.ContainerTypeEphemeral || p.TargetNamespaces == nil || !joinsTarget(p.pod, st.Index) {
		return podstate.Waiting{}, nil
	}
	cause := p.TargetNamespaces.TargetSharing()
	if cause == nil {
		return podstate.Waiting{}, nil
	}
	target := p.pod.Spec.EphemeralContainers[st.Index].TargetContainerName
	err := fmt.Errorf("not started: the node's TARGET preflight found that the container runtime does not share a target container's process namespace, so %s would not see the processes of %s: %w", st.Name, target, cause)
	w := podstate.Waiting{Reason: debugapi.ReasonTargetUnsupported, Message: err.Error()}
	if cs := podstate.ReportedEphemeral(p.pod, st.Name); cs == nil || cs.State.Waiting == nil || cs.State.Waiting.Reason != w.Reason {
		p.Recorder.Eventf(podstate.ContainerRef(p.pod, st.Type, st.Name), v1.EventTypeWarning, debugapi.ReasonTargetUnsupported, "%s", w.Message)
	}
	return w, err
}

// joinsTarget reports whether ephemeral container index is created with PID
// namespace mode TARGET: it names a target container, and the pod shares no
// PID namespace that would make the target's the pod's (see
// targetContainerID).
func joinsTarget(pod *v1.Pod, index int) bool {
	if index < 0 || index >= len(pod.Spec.EphemeralContainers) {
		return false
	}
	shared := pod.Spec.HostPID || (pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace)
	return pod.Spec.EphemeralContainers[index].TargetContainerName != "" && !shared
}
