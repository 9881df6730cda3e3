package kuberuntime

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// debugStopGracePeriod is how long a debug container the agent stops gets
// to exit on SIGTERM before it is killed. Short: an interactive shell
// ignores SIGTERM, and the user who asked for the stop waits for it.
const debugStopGracePeriod int64 = 3

// endEphemeral carries out one EndAction: the ending is recorded first
// (durable, so that the status names it and the container is never
// started again, whatever happens next), told in an Event, and then the
// container, if it runs, is stopped.
func (p *podSync) endEphemeral(ctx context.Context, e EndAction) error {
	logger := klog.FromContext(ctx).WithValues("containerName", e.Name, "containerID", e.ContainerID, "reason", e.Reason)
	ref := podstate.ContainerRef(p.pod, criconfig.ContainerTypeEphemeral, e.Name)
	rec := p.state.Records[e.Name]
	if rec.Ended == nil || (e.ContainerID != "" && rec.ContainerID != e.ContainerID) {
		rec.Ended = &podstate.Ending{Reason: e.Reason, Message: e.Message, At: p.Clock.Now()}
		if e.ContainerID != "" {
			rec.ContainerID = e.ContainerID
		}
		if err := p.putRecord(ctx, e.Name, rec); err != nil {
			// Without the record the stop would read as the container's
			// own exit; the next sync tries again.
			return fmt.Errorf("record the end of debug container %s: %w", e.Name, err)
		}
		p.Recorder.Eventf(ref, v1.EventTypeNormal, e.Reason, "%s", e.Message)
		p.Metrics.ephemeralEnded(p.pod.UID, e.Name, e.Reason)
		logger.Info("Ending debug container", "message", e.Message)
	}
	if !e.Running {
		return nil
	}
	p.Recorder.Eventf(ref, v1.EventTypeNormal, "Killing", "Stopping container %s", e.Name)
	grace := debugStopGracePeriod
	if err := p.stopContainerGrace(ctx, p.pod, e.ContainerID, criconfig.ContainerTypeEphemeral, e.Name, &grace); err != nil {
		return fmt.Errorf("stop debug container %s: %w", e.Name, err)
	}
	return nil
}

// decideDebug asks the debug policy about ephemeral container st before it
// is created: first, or again in place of a container whose start was
// aborted (st.Replaces). A denied one is recorded as ended, never to run,
// audited and told in a Warning Event; denied is then true. Without a
// policy every debug container is allowed, as the kubelet allows it.
func (p *podSync) decideDebug(ctx context.Context, st StartAction) (d debugpolicy.Decision, denied bool, err error) {
	if p.DebugPolicy == nil {
		return debugpolicy.Decision{Allowed: true}, false, nil
	}
	ec := &p.pod.Spec.EphemeralContainers[st.Index]
	if d, err = p.DebugPolicy.Decide(ctx, p.pod, ec); err != nil {
		return d, false, fmt.Errorf("debug policy: %w", err)
	}
	if d.Allowed {
		return d, false, nil
	}
	rec := podstate.Record{Ended: &podstate.Ending{Reason: debugapi.ReasonPolicyDenied, Message: d.Message, At: p.Clock.Now()}}
	if st.Replaces != "" {
		// The aborted container stays, ended by the denial: the record
		// names it, and the replacement count is kept.
		rec.ContainerID, rec.Replacements = st.Replaces, p.state.Records[st.Name].Replacements
	}
	if err := p.putRecord(ctx, st.Name, rec); err != nil {
		// Not started either way; the next sync decides again.
		return d, true, fmt.Errorf("record the denial of debug container %s: %w", st.Name, err)
	}
	p.Recorder.Eventf(podstate.ContainerRef(p.pod, criconfig.ContainerTypeEphemeral, st.Name), v1.EventTypeWarning, debugapi.ReasonPolicyDenied, "%s", d.Message)
	p.audit(ctx, st, d, "")
	return d, true, nil
}

// audit writes the audit line of debug container st: created as id, or
// denied (id empty).
func (p *podSync) audit(ctx context.Context, st StartAction, d debugpolicy.Decision, id string) {
	e := debugapi.NewContainerAudit(p.pod, &p.pod.Spec.EphemeralContainers[st.Index], p.Clock.Now())
	e.ContainerID, e.Rule, e.Message = id, d.Rule, d.Message
	e.Decision = debugapi.DecisionAllowed
	if !d.Allowed {
		e.Decision = debugapi.DecisionDenied
	}
	e.Resources = describeCaps(d.Resources)
	if d.MaxDuration > 0 {
		e.MaxDuration = d.MaxDuration.String()
	}
	if d.IdleTimeout > 0 {
		e.IdleTimeout = d.IdleTimeout.String()
	}
	if p.Audit != nil {
		p.Audit.Container(ctx, e)
		return
	}
	klog.FromContext(ctx).Info("Debug container "+e.Decision, "containerName", st.Name, "containerID", id, "image", e.Image, "target", e.Target, "fieldManager", e.FieldManager, "rule", e.Rule, "message", e.Message)
}

// applyDebugDecision puts what the policy allowed a debug container with
// into its CRI config: the resource caps, and annotations that show them
// and carry the time limits the agent enforces.
func applyDebugDecision(config *runtimeapi.ContainerConfig, d debugpolicy.Decision) {
	if d.Rule == "" && d.Resources == nil && d.MaxDuration == 0 && d.IdleTimeout == 0 {
		return
	}
	if config.Annotations == nil {
		config.Annotations = map[string]string{}
	}
	if d.Rule != "" {
		config.Annotations[debugapi.PolicyRuleAnnotation] = d.Rule
	}
	if d.MaxDuration > 0 {
		config.Annotations[debugapi.MaxDurationAnnotation] = d.MaxDuration.String()
	}
	if d.IdleTimeout > 0 {
		config.Annotations[debugapi.IdleTimeoutAnnotation] = d.IdleTimeout.String()
	}
	if caps := describeCaps(d.Resources); caps != "" {
		config.Annotations[debugapi.ResourcesAnnotation] = caps
	}
	r := d.Resources
	if r == nil || (r.CPU == nil && r.Memory == nil) {
		return
	}
	if config.Linux == nil {
		config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if config.Linux.Resources == nil {
		config.Linux.Resources = &runtimeapi.LinuxContainerResources{}
	}
	criconfig.CapResources(config.Linux.Resources, r.CPU, r.Memory)
}

// reasonFailedDebugCaps is the Warning Event of a debug container whose
// caps could not all be applied.
const reasonFailedDebugCaps = "FailedDebugCaps"

// limitPids applies the pids cap of a debug container that just started.
// CRI cannot carry it, so there is a moment between the start and the cap;
// a cap that fails is told in a Warning Event, and the container keeps
// running: stopping a debugger the policy allowed would be worse.
func (p *podSync) limitPids(ctx context.Context, st StartAction, id string, d debugpolicy.Decision) {
	if d.Resources == nil || d.Resources.Pids == nil {
		return
	}
	ref := podstate.ContainerRef(p.pod, criconfig.ContainerTypeEphemeral, st.Name)
	err := fmt.Errorf("no pids limiter")
	if p.Pids != nil {
		err = p.Pids.LimitContainerPids(ctx, id, *d.Resources.Pids)
	}
	if err != nil {
		p.Recorder.Eventf(ref, v1.EventTypeWarning, reasonFailedDebugCaps, "Could not cap the processes of container %s at %d: %v", st.Name, *d.Resources.Pids, err)
		klog.FromContext(ctx).Error(err, "Failed to cap a debug container's processes", "containerName", st.Name, "containerID", id)
	}
}

// describeCaps is the ResourcesAnnotation's value: "cpu=500m,memory=128Mi,
// pids=256", caps left out being none.
func describeCaps(r *debugpolicy.Resources) string {
	if r == nil {
		return ""
	}
	var parts []string
	if r.CPU != nil {
		parts = append(parts, "cpu="+r.CPU.String())
	}
	if r.Memory != nil {
		parts = append(parts, "memory="+r.Memory.String())
	}
	if r.Pids != nil {
		parts = append(parts, fmt.Sprintf("pids=%d", *r.Pids))
	}
	return strings.Join(parts, ",")
}
