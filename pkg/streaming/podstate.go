package streaming

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// FromPodState returns the Pods that find session targets in the pods'
// observed runtime state: the newest sandbox if ready, and the newest
// instance of the named container.
func FromPodState(l *podstate.Lookup) Pods { return podStatePods{l} }

type podStatePods struct{ lookup *podstate.Lookup }

func (p podStatePods) StreamTarget(ctx context.Context, namespace, podName string, podUID types.UID, containerName string) (Target, error) {
	f, err := p.lookup.Find(ctx, namespace, podName, podUID, containerName)
	if err != nil {
		return Target{}, err
	}
	target := Target{Pod: f.Pod}
	if sb := f.State.LatestSandbox(); sb != nil && sb.Ready {
		target.SandboxID = sb.ID
	}
	if f.Spec != nil {
		c := &Container{Name: containerName, Ephemeral: f.Type == criconfig.ContainerTypeEphemeral, TTY: f.Spec.TTY}
		if latest := f.State.Latest(f.Type, containerName); latest != nil {
			c.ID, c.Running = latest.ID, latest.Running()
		}
		target.Container = c
	}
	return target, nil
}
