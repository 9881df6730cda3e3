package debugpolicy

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIVersion and Kind name the configuration file's format; a file of
// another version or kind is refused, so that a format change never
// silently loosens a node's policy.
const (
	APIVersion = "debug.ephemeral-agent.io/v1alpha1"
	Kind       = "DebugPolicy"
)

// DebugPolicy is what a node allows debug (ephemeral) containers to do. Its
// rules are tried in order; the first whose namespace selector matches the
// pod's namespace decides. A debug container no rule matches is allowed
// with no limits, as the kubelet allows it: a catch-all last rule (no
// selector) makes a default.
type DebugPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// Defaults are the caps and time limits of every debug container
	// allowed without a limit of its deciding rule's own, field by field,
	// and of one no rule matches.
	Defaults *Limits `json:"defaults,omitempty"`
	// Rules are tried in order.
	Rules []Rule `json:"rules"`
}

// Limits are caps and time limits without a rule: the policy's Defaults.
type Limits struct {
	// Resources caps the debug container's resources.
	Resources *Resources `json:"resources,omitempty"`
	// MaxDuration stops a debug container running longer.
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
	// IdleTimeout stops a debug container with no attach or exec session
	// for that long.
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// Rule is one scope's debug policy. A field left out imposes nothing.
type Rule struct {
	// Name names the rule in reasons, Events and audit lines; unique.
	Name string `json:"name"`
	// NamespaceSelector selects the namespaces (by their labels) the rule
	// applies to; none: every namespace.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// Images, when set, are the image repositories allowed: a repository
	// (registry.example.com/debug/busybox), a pattern of path.Match
	// (registry.example.com/debug/*), or a prefix ending in /** (every
	// repository below it). Docker Hub names are matched normalized
	// (busybox is docker.io/library/busybox).
	Images []string `json:"images,omitempty"`
	// RequireDigest allows only images named by digest (@sha256:...).
	RequireDigest bool `json:"requireDigest,omitempty"`
	// AllowPrivileged allows privileged debug containers; false (the
	// default of a rule) denies them.
	AllowPrivileged bool `json:"allowPrivileged,omitempty"`
	// AllowedCapabilities, when set, are the capabilities a debug
	// container may add (an empty list: none).
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`
	// RunAsNonRoot requires the debug container to run as a user other
	// than root, by runAsNonRoot or a non-zero runAsUser of its own or the
	// pod's security context.
	RunAsNonRoot bool `json:"runAsNonRoot,omitempty"`
	// RunAsUser, when set, requires an explicit runAsUser in this range.
	RunAsUser *IDRange `json:"runAsUser,omitempty"`
	// AllowTarget, when set to false, denies sharing a container's process
	// namespace (kubectl debug --target).
	AllowTarget *bool `json:"allowTarget,omitempty"`
	// Resources caps the debug container's resources.
	Resources *Resources `json:"resources,omitempty"`
	// MaxDuration stops a debug container running longer.
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
	// IdleTimeout stops a debug container with no attach or exec session
	// for that long.
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// IDRange is an inclusive range of user IDs.
type IDRange struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Resources are limits set on a debug container through the runtime.
type Resources struct {
	// CPU limits the container's CPU time (cores, as a quantity).
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// Memory limits the container's memory.
	Memory *resource.Quantity `json:"memory,omitempty"`
	// Pids limits the container's processes.
	Pids *int64 `json:"pids,omitempty"`
}
