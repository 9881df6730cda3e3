package streaming

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pods resolves the target of a debug session. FromPodState returns the
// agent's.
type Pods interface {
	// StreamTarget finds the pod namespace/podName bound to this node (with
	// that UID when podUID is not empty) and, when containerName is not
	// empty, its container of that name: a regular, init or ephemeral one,
	// and that container's newest runtime instance.
	//
	// It returns podstate.ErrPodNotFound or podstate.ErrContainerNotFound,
	// possibly wrapped, when there is no such pod or container in the pod's
	// spec (404); any other error is a failure to look (500).
	StreamTarget(ctx context.Context, namespace, podName string, podUID types.UID, containerName string) (Target, error)
}

// Target is what a session connects to.
type Target struct {
	// Pod is the pod from the API.
	Pod *v1.Pod
	// SandboxID is the CRI ID of the pod's newest sandbox when it is ready
	// (port-forward connects to it); empty otherwise.
	SandboxID string
	// Container is the named container; nil when none was asked for.
	Container *Container
}

// Container is one container of the target pod.
type Container struct {
	// Name is the container's name in the spec.
	Name string
	// Ephemeral is true for a container of spec.ephemeralContainers.
	Ephemeral bool
	// TTY is the spec's tty: attach must use the terminal the container was
	// started with, whatever the client asks.
	TTY bool
	// ID is the CRI ID of the newest instance; empty when none was created.
	ID string
	// Running reports whether that instance runs.
	Running bool
}

// Runtime is the part of the CRI runtime service sessions need
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
	// ContainerStatus tells, after an attach session, whether the
	// container exited and with which code.
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
}
