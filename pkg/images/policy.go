package images

import v1 "k8s.io/api/core/v1"

// action is what EnsureImage does about an image, given its pull policy and
// whether the runtime already has it.
type action int

const (
	// actionUsePresent: take the image the runtime has.
	actionUsePresent action = iota
	// actionPull: pull (subject to backoff).
	actionPull
	// actionNeverPull: fail with ErrImageNeverPull.
	actionNeverPull
)

// defaultPullPolicy is the API server's default for an empty policy: Always
// for the latest tag, written or implied, IfNotPresent otherwise (a digest
// without a tag included).
func defaultPullPolicy(n imageName) v1.PullPolicy {
	if n.tag == defaultTag || n.tag == "" && n.digest == "" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// needsPresence reports whether the decision for policy depends on the image
// being present, so the runtime must be asked first.
func needsPresence(policy v1.PullPolicy) bool {
	return policy == v1.PullIfNotPresent || policy == v1.PullNever
}

// decide applies policy. present is ignored when needsPresence is false:
// Always, and like the kubelet any unknown policy, pulls every time.
func decide(policy v1.PullPolicy, present bool) action {
	switch {
	case !needsPresence(policy):
		return actionPull
	case present:
		return actionUsePresent
	case policy == v1.PullNever:
		return actionNeverPull
	default:
		return actionPull
	}
}
