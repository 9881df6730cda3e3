package podstate

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// The rules below are read by both the plan (what to start) and the status
// (what to report). They live here, once, so the two cannot disagree.

// IsSidecar reports whether c is a restartable init container: one that
// keeps running beside the regular containers and restarts whenever it
// exits, whatever the pod's restart policy.
func IsSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// Current returns the newest container of that type and name in sandbox
// sb, or nil: a container of an earlier sandbox does not count in this one.
func (s *PodState) Current(sb *Sandbox, typ criconfig.ContainerType, name string) *Container {
	if s == nil || sb == nil {
		return nil
	}
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Type == typ && c.Name == name && c.SandboxID == sb.ID {
			return c
		}
	}
	return nil
}

// InitContainerDone reports whether the init container spec, whose newest
// instance in the current sandbox is cur (nil for none), lets the next one
// start: a regular init container once it exited 0, a sidecar once it has
// started, even if it exited since (it restarts beside the others).
func InitContainerDone(spec *v1.Container, cur *Container) bool {
	if cur == nil {
		return false
	}
	if IsSidecar(spec) {
		return cur.Running() || !cur.StartedAt.IsZero()
	}
	return cur.Exited() && cur.ExitCode == 0
}

// InitDone reports whether every init container of pod is done in the
// newest sandbox, so that regular containers may start (and the pod's
// Initialized condition is true). A pod without init containers always is;
// one with init containers but no sandbox is not.
func InitDone(pod *v1.Pod, s *PodState) bool {
	sb := s.LatestSandbox()
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !InitContainerDone(c, s.Current(sb, criconfig.ContainerTypeInit, c.Name)) {
			return false
		}
	}
	return true
}

// ContainerSpec returns the spec of the named container of that type; an
// ephemeral container is converted to the common Container shape. It
// returns nil when the pod has no such container.
func ContainerSpec(pod *v1.Pod, typ criconfig.ContainerType, name string) *v1.Container {
	switch typ {
	case criconfig.ContainerTypeInit:
		for i := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[i].Name == name {
				return &pod.Spec.InitContainers[i]
			}
		}
	case criconfig.ContainerTypeEphemeral:
		for i := range pod.Spec.EphemeralContainers {
			if pod.Spec.EphemeralContainers[i].Name == name {
				c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
				return &c
			}
		}
	default:
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == name {
				return &pod.Spec.Containers[i]
			}
		}
	}
	return nil
}

// FindContainer finds a container of the pod spec by name alone, as the
// kubelet API names them: regular first, then init, then ephemeral. The
// spec is nil when the pod has no container of that name.
func FindContainer(pod *v1.Pod, name string) (criconfig.ContainerType, *v1.Container) {
	for _, t := range []criconfig.ContainerType{criconfig.ContainerTypeRegular, criconfig.ContainerTypeInit, criconfig.ContainerTypeEphemeral} {
		if spec := ContainerSpec(pod, t, name); spec != nil {
			return t, spec
		}
	}
	return "", nil
}

// ContainerRef is the object Events about a container of pod are attached
// to, with the kubelet's fieldPath (spec.containers{NAME},
// spec.initContainers{NAME} or spec.ephemeralContainers{NAME}), which
// kubectl describe groups them by.
func ContainerRef(pod *v1.Pod, typ criconfig.ContainerType, name string) *v1.ObjectReference {
	field := "spec.containers"
	switch typ {
	case criconfig.ContainerTypeInit:
		field = "spec.initContainers"
	case criconfig.ContainerTypeEphemeral:
		field = "spec.ephemeralContainers"
	}
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
		FieldPath:       field + "{" + name + "}",
	}
}

// The kubelet's reason and message for a pod that ran past its
// spec.activeDeadlineSeconds: its phase becomes Failed with them.
const (
	ReasonDeadlineExceeded  = "DeadlineExceeded"
	MessageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// ActiveDeadline returns when pod's spec.activeDeadlineSeconds runs out,
// counted from its status.startTime as the kubelet counts it, and false
// when it has none (or no start time yet).
func ActiveDeadline(pod *v1.Pod) (time.Time, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return time.Time{}, false
	}
	return pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second), true
}

// PastActiveDeadline reports whether pod has been active longer than its
// spec.activeDeadlineSeconds at now: the plan kills it and the status
// says Failed, DeadlineExceeded.
func PastActiveDeadline(pod *v1.Pod, now time.Time) bool {
	d, ok := ActiveDeadline(pod)
	return ok && !now.Before(d)
}
