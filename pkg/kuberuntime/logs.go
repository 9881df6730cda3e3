package kuberuntime

import (
	"context"
	"fmt"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/logs"
)

// ContainerLogTarget finds the runtime container whose log `kubectl logs`
// asks for: the newest instance of the named container (init, regular or
// ephemeral), or with previous the one before it. It implements
// logs.Resolver.
func (s *Syncer) ContainerLogTarget(ctx context.Context, namespace, podName, containerName string, previous bool) (logs.LogTarget, error) {
	pod, ok := s.Pods.GetPod(namespace, podName)
	if !ok {
		return logs.LogTarget{}, fmt.Errorf("pod %s/%s: %w", namespace, podName, logs.ErrPodNotFound)
	}
	typ, spec := findContainer(pod, containerName)
	if spec == nil {
		return logs.LogTarget{}, fmt.Errorf("container %s: %w", containerName, logs.ErrContainerNotFound)
	}
	state, err := s.obs.observe(ctx, pod.UID)
	if err != nil {
		return logs.LogTarget{}, err
	}
	instances := state.Instances(typ, containerName)
	i := 0
	if previous {
		i = 1
	}
	if len(instances) <= i {
		if previous {
			return logs.LogTarget{}, fmt.Errorf("container %s: %w", containerName, logs.ErrPreviousNotFound)
		}
		return logs.LogTarget{}, &logs.WaitingError{Reason: "ContainerCreating"}
	}
	return logs.LogTarget{Path: instances[i].LogPath, ContainerID: instances[i].ID}, nil
}
