package logs

import (
	"context"
	"fmt"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// FromPodState returns the Resolver that finds logs in the pods' observed
// runtime state: the newest instance of the named container (init,
// regular or ephemeral), or with previous the one before it.
func FromPodState(l *podstate.Lookup) Resolver { return podStateResolver{l} }

type podStateResolver struct{ lookup *podstate.Lookup }

func (r podStateResolver) ContainerLogTarget(ctx context.Context, namespace, podName, containerName string, previous bool) (LogTarget, error) {
	f, err := r.lookup.Find(ctx, namespace, podName, "", containerName)
	if err != nil {
		return LogTarget{}, err
	}
	instances := f.State.Instances(f.Type, containerName)
	i := 0
	if previous {
		i = 1
	}
	if len(instances) <= i {
		if previous {
			return LogTarget{}, fmt.Errorf("container %s: %w", containerName, ErrPreviousNotFound)
		}
		if f.Type == criconfig.ContainerTypeEphemeral {
			// `kubectl debug -it` reads the logs of a debug container
			// that ended at once: this is what it shows the user.
			if e := podstate.EphemeralNeverRun(f.Pod, f.State, containerName); e != nil {
				return LogTarget{}, fmt.Errorf("container %q in pod %q never ran: %s: %s", containerName, podName, e.Reason, e.Message)
			}
		}
		return LogTarget{}, &WaitingError{Reason: "ContainerCreating"}
	}
	return LogTarget{Path: instances[i].LogPath, ContainerID: instances[i].ID}, nil
}
