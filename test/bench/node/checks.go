package node

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
)

// podRunning holds once the pod is Running with every app container running.
func podRunning(p *v1.Pod) (bool, error) {
	switch p.Status.Phase {
	case v1.PodFailed, v1.PodSucceeded:
		return false, fmt.Errorf("pod %s/%s ended: phase %s", p.Namespace, p.Name, p.Status.Phase)
	case v1.PodRunning:
	default:
		return false, nil
	}
	if len(p.Status.ContainerStatuses) < len(p.Spec.Containers) {
		return false, nil
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running == nil {
			return false, nil
		}
	}
	return true, nil
}

// state is the awaited state of a debug container.
type state string

const (
	running    state = "Running"
	terminated state = "Terminated"
)

// debugReached returns the check that the ephemeral container name reached
// want. Awaiting Running, a Terminated state is an error (the container
// should sleep); awaiting Terminated, a non-zero exit code is.
func debugReached(name string, want state) check {
	return func(p *v1.Pod) (bool, error) {
		s := ephemeralStatus(p, name)
		if s == nil {
			return false, nil
		}
		if t := s.State.Terminated; t != nil {
			if want == running {
				return false, fmt.Errorf("pod %s/%s debug container %s terminated (exit code %d, %s: %s) instead of running",
					p.Namespace, p.Name, name, t.ExitCode, t.Reason, t.Message)
			}
			if t.ExitCode != 0 {
				return false, fmt.Errorf("pod %s/%s debug container %s exited with code %d (%s: %s)",
					p.Namespace, p.Name, name, t.ExitCode, t.Reason, t.Message)
			}
			return true, nil
		}
		return want == running && s.State.Running != nil, nil
	}
}

func ephemeralStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for i := range p.Status.EphemeralContainerStatuses {
		if p.Status.EphemeralContainerStatuses[i].Name == name {
			return &p.Status.EphemeralContainerStatuses[i]
		}
	}
	return nil
}

// describe says where a pod stands, for a timeout's error: its phase and,
// when container is set, that ephemeral container's state.
func describe(p *v1.Pod, container string) string {
	if p == nil {
		return "pod not in the watch cache"
	}
	if container == "" {
		d := fmt.Sprintf("phase %q", p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			d += fmt.Sprintf(", container %s %s", s.Name, stateString(s.State))
		}
		return d
	}
	s := ephemeralStatus(p, container)
	if s == nil {
		return fmt.Sprintf("phase %q, no status for debug container %s", p.Status.Phase, container)
	}
	return fmt.Sprintf("debug container %s %s", container, stateString(s.State))
}

func stateString(s v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated (exit code %d, %s)", s.Terminated.ExitCode, s.Terminated.Reason)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting (%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "without state"
}
