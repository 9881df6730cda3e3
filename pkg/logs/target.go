package logs

import (
	"context"
	"errors"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// LogTarget names the log of one container instance.
type LogTarget struct {
	// Path is the CRI log file, as the runtime reports it in
	// ContainerStatus.LogPath. When empty, the handler asks the Runtime for
	// it, as the kubelet always does.
	Path string
	// ContainerID is the CRI container ID; it is required. A "runtime://"
	// prefix, as in a pod's status.containerStatuses[].containerID, is
	// accepted and stripped.
	ContainerID string
}

// Resolver finds the log of a container in a pod bound to this node.
// FromPodState returns the agent's.
type Resolver interface {
	// ContainerLogTarget returns the log of containerName (a regular, init or
	// ephemeral container) in the pod namespace/podName: its current or most
	// recent instance, or with previous the instance before that.
	//
	// The error tells the user why there are no logs, in the kubelet's words:
	// podstate.ErrPodNotFound (404), podstate.ErrContainerNotFound (404),
	// ErrPreviousNotFound or a *WaitingError, each possibly wrapped. Any
	// other error is shown to the user verbatim.
	ContainerLogTarget(ctx context.Context, namespace, podName, containerName string, previous bool) (LogTarget, error)
}

// Runtime is the part of the CRI runtime service the handler needs: the
// container's log path when the Resolver gave none, and whether a followed
// container is still running.
type Runtime interface {
	// ContainerStatus is the CRI call of the same name.
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
}

// ErrPreviousNotFound means previous was asked for but the container has no
// terminated earlier instance (400).
var ErrPreviousNotFound = errors.New("no previous terminated container")

// WaitingError means the container is waiting to start and has no log yet
// (400).
type WaitingError struct {
	// Reason is the container's waiting reason, such as ContainerCreating or
	// ErrImagePull; empty when unknown.
	Reason string
}

// Error implements error.
func (e *WaitingError) Error() string {
	if e.Reason == "" {
		return "container is waiting to start"
	}
	return "container is waiting to start: " + e.Reason
}
