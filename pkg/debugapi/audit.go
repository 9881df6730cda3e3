package debugapi

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// KindContainer is the kind of a ContainerAudit line; session lines have
// exec, attach and portforward.
const KindContainer = "container"

// Decisions of a ContainerAudit.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
)

// ContainerAudit is one debug container as the audit log has it, one JSON
// object per line beside the session lines: the agent writes one when it
// creates a debug container and one when its policy refuses one. Together
// with the session lines it is a node-side trail of every debug action.
type ContainerAudit struct {
	// Kind is always KindContainer.
	Kind string `json:"kind"`
	// Time is when the agent decided.
	Time time.Time `json:"time"`

	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	PodUID      string `json:"podUID"`
	Container   string `json:"container"`
	ContainerID string `json:"containerID,omitempty"`
	Image       string `json:"image"`
	// Target is the container whose process namespace it shares.
	Target  string   `json:"target,omitempty"`
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`

	// Privileged, AddedCapabilities and RunAsUser are what the container
	// asked for; RunAsUser is its own or, when it sets none, the pod's.
	Privileged        bool     `json:"privileged,omitempty"`
	AddedCapabilities []string `json:"addedCapabilities,omitempty"`
	RunAsUser         *int64   `json:"runAsUser,omitempty"`

	// FieldManager and ManagedTime are who added the container to the pod,
	// and when, as the API server's managedFields tell (see FieldManager).
	// The person behind the manager is in the API server's audit log.
	FieldManager string     `json:"fieldManager,omitempty"`
	ManagedTime  *time.Time `json:"managedTime,omitempty"`

	// Decision is DecisionAllowed or DecisionDenied.
	Decision string `json:"decision"`
	// Rule is the policy rule that decided; Message why it denied.
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message,omitempty"`
	// Resources, MaxDuration and IdleTimeout are the limits applied to an
	// allowed container, as the policy names them.
	Resources   string `json:"resources,omitempty"`
	MaxDuration string `json:"maxDuration,omitempty"`
	IdleTimeout string `json:"idleTimeout,omitempty"`
}

// NewContainerAudit returns the audit line of debug container ec of pod,
// at now, with what the pod says about it (image, target, command,
// security, field manager); the caller adds the decision, the limits and,
// once created, the container ID.
func NewContainerAudit(pod *v1.Pod, ec *v1.EphemeralContainer, now time.Time) *ContainerAudit {
	a := &ContainerAudit{
		Kind: KindContainer, Time: now,
		Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID),
		Container: ec.Name, Image: ec.Image, Target: ec.TargetContainerName,
		Command: ec.Command, Args: ec.Args,
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		a.RunAsUser = psc.RunAsUser
	}
	if sc := ec.SecurityContext; sc != nil {
		a.Privileged = sc.Privileged != nil && *sc.Privileged
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				a.AddedCapabilities = append(a.AddedCapabilities, string(c))
			}
		}
		if sc.RunAsUser != nil {
			a.RunAsUser = sc.RunAsUser
		}
	}
	if m, at, ok := FieldManager(pod, ec.Name); ok {
		a.FieldManager = m
		if !at.IsZero() {
			a.ManagedTime = &at
		}
	}
	return a
}

// FieldManager returns the manager of pod's managedFields that owns
// ephemeral container name (for `kubectl debug` 1.37, "kubectl" through
// the ephemeralcontainers subresource) and the time of its entry; the
// newest entry when several own it. ok is false when none does.
//
// The time is the manager's last write to the pod, which is when it added
// this container unless it added a later one since: the API server keeps
// one entry per manager, operation and subresource.
func FieldManager(pod *v1.Pod, name string) (manager string, at time.Time, ok bool) {
	spec := fieldpath.PathElement{FieldName: ptr.To("spec")}
	ecs := fieldpath.PathElement{FieldName: ptr.To("ephemeralContainers")}
	key := fieldpath.PathElement{Key: fieldpath.KeyByFields("name", name)}
	for _, e := range pod.ManagedFields {
		raw := e.FieldsV1.GetRawReader()
		if raw.Size() == 0 {
			continue
		}
		var owned fieldpath.Set
		if err := owned.FromJSON(raw); err != nil {
			// The API server wrote it; a broken entry owns nothing.
			continue
		}
		list := owned.WithPrefix(spec).WithPrefix(ecs)
		// The container itself ("." under its key) or any of its fields.
		if !list.Members.Has(key) && list.WithPrefix(key).Empty() {
			continue
		}
		var t time.Time
		if e.Time != nil {
			t = e.Time.Time
		}
		if !ok || t.After(at) {
			manager, at, ok = e.Manager, t, true
		}
	}
	return manager, at, ok
}
