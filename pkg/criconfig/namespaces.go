package criconfig

import (
	"errors"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// errUserNamespaces refuses pods that ask for a user namespace: the kubelet
// allocates each such pod a private UID/GID range and records it on disk,
// which the agent does not do, and running the pod in the host's user
// namespace instead would silently drop the isolation it asked for.
var errUserNamespaces = errors.New("pod requests a user namespace (hostUsers: false), which this node agent does not support")

// podNamespaces returns the namespaces of pod's sandbox and, unless an
// ephemeral container targets another one, of its containers.
func podNamespaces(pod *v1.Pod) (*runtimeapi.NamespaceOption, error) {
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		return nil, errUserNamespaces
	}
	return &runtimeapi.NamespaceOption{
		Network: networkNamespace(pod),
		Pid:     pidNamespace(pod),
		Ipc:     ipcNamespace(pod),
	}, nil
}

// containerNamespaces returns a container's namespaces. A container given
// a target (an ephemeral container's targetContainerName, resolved to an
// ID) joins that container's PID namespace, but only when it would
// otherwise have its own: with hostPID or shareProcessNamespace it already
// sees the target's processes.
func containerNamespaces(pod *v1.Pod, targetID string) (*runtimeapi.NamespaceOption, error) {
	ns, err := podNamespaces(pod)
	if err != nil {
		return nil, err
	}
	if targetID != "" && ns.Pid == runtimeapi.NamespaceMode_CONTAINER {
		ns.Pid = runtimeapi.NamespaceMode_TARGET
		ns.TargetId = targetID
	}
	return ns, nil
}

func networkNamespace(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostNetwork {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func ipcNamespace(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostIPC {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

// pidNamespace: hostPID wins over shareProcessNamespace; without either
// each container has its own, which is not CRI's zero value (POD).
func pidNamespace(pod *v1.Pod) runtimeapi.NamespaceMode {
	switch {
	case pod.Spec.HostPID:
		return runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		return runtimeapi.NamespaceMode_POD
	default:
		return runtimeapi.NamespaceMode_CONTAINER
	}
}
