package podstate

import (
	"slices"
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

// InitContainerDone reports whether init container i of pod lets the
// next one start, as the kubelet's computeInitContainerActions decides: a
// regular init container once it exited 0 in the newest sandbox; a sidecar
// once it runs and has started (its startup probe succeeded, per
// s.Probes). A sidecar that is restarting (exited, or running but not
// started again) still counts once the pod went past it: a later init
// container or a regular container has an instance in that sandbox.
func (s *PodState) InitContainerDone(pod *v1.Pod, i int) bool {
	sb := s.LatestSandbox()
	spec := &pod.Spec.InitContainers[i]
	cur := s.Current(sb, criconfig.ContainerTypeInit, spec.Name)
	if cur == nil {
		return false
	}
	if !IsSidecar(spec) {
		return cur.Exited() && cur.ExitCode == 0
	}
	if cur.Running() && s.Started(cur) {
		return true
	}
	for j := i + 1; j < len(pod.Spec.InitContainers); j++ {
		if s.Current(sb, criconfig.ContainerTypeInit, pod.Spec.InitContainers[j].Name) != nil {
			return true
		}
	}
	for j := range pod.Spec.Containers {
		if s.Current(sb, criconfig.ContainerTypeRegular, pod.Spec.Containers[j].Name) != nil {
			return true
		}
	}
	return false
}

// Started reports whether running container c has started: its startup
// probe succeeded or it has none. Without a prober (Probes nil) every
// running container has.
func (s *PodState) Started(c *Container) bool {
	if !c.Running() {
		return false
	}
	return s.Probes == nil || s.Probes[c.ID].Started
}

// InitDone reports whether every init container of pod is done in the
// newest sandbox, so that regular containers may start (and the pod's
// Initialized condition is true). A pod without init containers always is;
// one with init containers but no sandbox is not.
func InitDone(pod *v1.Pod, s *PodState) bool {
	for i := range pod.Spec.InitContainers {
		if !s.InitContainerDone(pod, i) {
			return false
		}
	}
	return true
}

// ShouldRestart reports whether container c of pod, which exited with
// exitCode, is to be started again, as the kubelet's ContainerShouldRestart
// with ContainerRestartRules (on in 1.37): the container's
// restartPolicyRules first, in order, the first whose exit codes match
// deciding (action Restart, and RestartAllContainers, which here restarts
// only this container); then the container's restartPolicy; then the
// pod's (Always when unset). The rules count only beside a container
// restartPolicy, as validation demands.
func ShouldRestart(pod *v1.Pod, c *v1.Container, exitCode int32) bool {
	if c.RestartPolicy != nil {
		if rule, ok := matchingRule(c, exitCode); ok {
			switch rule.Action {
			case v1.ContainerRestartRuleActionRestart, v1.ContainerRestartRuleActionRestartAllContainers:
				return true
			}
		}
		switch *c.RestartPolicy {
		case v1.ContainerRestartPolicyAlways:
			return true
		case v1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case v1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch pod.Spec.RestartPolicy {
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	case v1.RestartPolicyNever:
		return false
	}
	return true
}

// Restartable reports whether container c of pod may ever run again after
// it stopped, whatever its exit code, as the kubelet's
// IsContainerRestartable: a rule that restarts, a container restartPolicy
// other than Never, or else a pod restartPolicy other than Never.
func Restartable(pod *v1.Pod, c *v1.Container) bool {
	if c.RestartPolicy != nil {
		for _, r := range c.RestartPolicyRules {
			if r.Action == v1.ContainerRestartRuleActionRestart || r.Action == v1.ContainerRestartRuleActionRestartAllContainers {
				return true
			}
		}
		return *c.RestartPolicy != v1.ContainerRestartPolicyNever
	}
	return pod.Spec.RestartPolicy != v1.RestartPolicyNever
}

// matchingRule returns the first of c's restartPolicyRules whose exit codes
// match exitCode (operator In: among the values; NotIn: not among them).
func matchingRule(c *v1.Container, exitCode int32) (v1.ContainerRestartRule, bool) {
	for _, r := range c.RestartPolicyRules {
		if r.ExitCodes == nil {
			continue
		}
		in := slices.Contains(r.ExitCodes.Values, exitCode)
		switch r.ExitCodes.Operator {
		case v1.ContainerRestartRuleOnExitCodesOpIn:
			if in {
				return r, true
			}
		case v1.ContainerRestartRuleOnExitCodesOpNotIn:
			if !in {
				return r, true
			}
		}
	}
	return v1.ContainerRestartRule{}, false
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
