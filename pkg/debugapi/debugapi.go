// Package debugapi holds the names of debug control that users and tools
// see: the pod annotation that asks for debug containers to stop, the
// reasons a debug container's status ends with when the agent ended it, and
// the annotations the agent puts on the runtime's debug containers. The
// agent, its plugin (cmd/kubectl-ephemeral) and other tools share them
// from here. Nothing in it changes the Kubernetes API.
package debugapi

import (
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// StopAnnotation on a pod names, comma-separated, its debug (ephemeral)
// containers to stop. Setting it needs RBAC's patch on pods, and the API
// server's audit log records who set it. A stopped debug container is
// never started again; names that are not running debug containers are
// ignored.
const StopAnnotation = "debug.ephemeral-agent.io/stop"

// Reasons of a debug container's final Terminated state when the agent, not
// the container's own command, ended it. Each also names the Event that
// tells it.
const (
	// ReasonPolicyDenied: the node's debug policy denied the container; it
	// never ran.
	ReasonPolicyDenied = "DebugPolicyDenied"
	// ReasonStopRequested: the pod's StopAnnotation named it.
	ReasonStopRequested = "DebugStopRequested"
	// ReasonDeadlineExceeded: it ran past its policy's maxDuration.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonSessionIdle: no attach or exec session reached it for its
	// policy's idleTimeout.
	ReasonSessionIdle = "DebugSessionIdle"
	// ReasonTargetUnsupported: a container asked for a target container's
	// process namespace and the node's preflight found the runtime does
	// not share it (a Waiting reason).
	ReasonTargetUnsupported = "TargetNamespaceUnsupported"
)

// Annotations the agent sets on the runtime's (CRI) debug containers, so
// that `crictl inspect` shows what was applied.
const (
	// ResourcesAnnotation holds the resource caps applied (cpu, memory,
	// pids), as "cpu=500m,memory=128Mi,pids=256".
	ResourcesAnnotation = "debug.ephemeral-agent.io/resources"
	// PolicyRuleAnnotation names the policy rule that allowed the
	// container.
	PolicyRuleAnnotation = "debug.ephemeral-agent.io/policy-rule"
	// MaxDurationAnnotation and IdleTimeoutAnnotation hold the time
	// limits the container was created with (Go durations, "15m0s"). The
	// agent enforces them from these: a container keeps the limits it was
	// allowed with, whatever later policy reloads say.
	MaxDurationAnnotation = "debug.ephemeral-agent.io/max-duration"
	IdleTimeoutAnnotation = "debug.ephemeral-agent.io/idle-timeout"
)

// StopRequested returns the names the pod's StopAnnotation lists, in order,
// without blanks or repeats.
func StopRequested(pod *v1.Pod) []string {
	return ParseNames(pod.Annotations[StopAnnotation])
}

// ParseNames splits a StopAnnotation value.
func ParseNames(value string) []string {
	var out []string
	for _, n := range strings.Split(value, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// WithName returns value with name added, for a client asking for one more
// stop; value is returned as it is when it names name already.
func WithName(value, name string) string {
	names := ParseNames(value)
	if slices.Contains(names, name) {
		return value
	}
	return strings.Join(append(names, name), ",")
}
