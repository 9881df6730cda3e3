package kuberuntime

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/streaming"
)

// StreamTarget finds what `kubectl exec`, `attach`, `debug -it` and
// `port-forward` connect to: the pod (with that UID when one is given),
// its newest sandbox if ready, and, when containerName is not empty, the
// newest runtime instance of that regular, init or ephemeral container.
// It implements streaming.Pods.
func (s *Syncer) StreamTarget(ctx context.Context, namespace, podName string, podUID types.UID, containerName string) (streaming.Target, error) {
	pod, ok := s.Pods.GetPod(namespace, podName)
	if !ok || (podUID != "" && pod.UID != podUID) {
		return streaming.Target{}, fmt.Errorf("pod %s/%s: %w", namespace, podName, streaming.ErrPodNotFound)
	}
	var (
		typ  criconfig.ContainerType
		spec *v1.Container
	)
	if containerName != "" {
		if typ, spec = findContainer(pod, containerName); spec == nil {
			return streaming.Target{}, fmt.Errorf("container %s: %w", containerName, streaming.ErrContainerNotFound)
		}
	}
	state, err := s.obs.observe(ctx, pod.UID)
	if err != nil {
		return streaming.Target{}, err
	}
	target := streaming.Target{Pod: pod}
	if sb := state.LatestSandbox(); sb != nil && sb.Ready {
		target.SandboxID = sb.ID
	}
	if spec != nil {
		c := &streaming.Container{Name: containerName, Ephemeral: typ == criconfig.ContainerTypeEphemeral, TTY: spec.TTY}
		if latest := state.Latest(typ, containerName); latest != nil {
			c.ID, c.Running = latest.ID, latest.Running()
		}
		target.Container = c
	}
	return target, nil
}
