package podstate

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

var (
	// ErrPodNotFound means no pod of that namespace, name (and UID, when
	// one was given) is bound to this node.
	ErrPodNotFound = errors.New("pod not found")
	// ErrContainerNotFound means the pod's spec has no container, init
	// container or ephemeral container of that name.
	ErrContainerNotFound = errors.New("container not found in pod spec")
)

// PodGetter returns a pod bound to this node by namespace and name, from
// the agent's cache.
type PodGetter interface {
	GetPod(namespace, name string) (*v1.Pod, bool)
}

// Lookup answers which pod and container a request for logs, exec, attach
// or port-forward means, with the pod's observed state. It reads through
// an Observer, so it shares that Observer's cache with the sync loop.
type Lookup struct {
	pods PodGetter
	obs  *Observer
}

// NewLookup returns a Lookup over the pods of pods and the states obs
// observes.
func NewLookup(pods PodGetter, obs *Observer) *Lookup {
	return &Lookup{pods: pods, obs: obs}
}

// Found is what a Lookup found.
type Found struct {
	// Pod is the pod from the API.
	Pod *v1.Pod
	// State is the pod's state in the runtime.
	State *PodState
	// Type and Spec are the named container's; Spec is nil when no
	// container was asked for.
	Type criconfig.ContainerType
	Spec *v1.Container
}

// Find finds the pod namespace/name (with that UID when uid is not empty)
// and, when container is not empty, its container of that name: a
// regular, init or ephemeral one. It returns ErrPodNotFound or
// ErrContainerNotFound, wrapped, when there is no such pod or container
// in the spec; any other error is a failure to read the runtime.
func (l *Lookup) Find(ctx context.Context, namespace, name string, uid types.UID, container string) (*Found, error) {
	pod, ok := l.pods.GetPod(namespace, name)
	if !ok || (uid != "" && pod.UID != uid) {
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, ErrPodNotFound)
	}
	f := &Found{Pod: pod}
	if container != "" {
		if f.Type, f.Spec = FindContainer(pod, container); f.Spec == nil {
			return nil, fmt.Errorf("container %s: %w", container, ErrContainerNotFound)
		}
	}
	state, err := l.obs.Observe(ctx, pod.UID)
	if err != nil {
		return nil, err
	}
	f.State = state
	return f, nil
}
