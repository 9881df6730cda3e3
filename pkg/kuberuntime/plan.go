package kuberuntime

import (
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// Crash-loop backoff, as the kubelet's: the first restart is immediate, the
// next waits 10s, doubling up to 5 minutes; a container that ran longer than
// backoffReset before failing starts over at no delay.
const (
	initialBackoff = 10 * time.Second
	maxBackoff     = 5 * time.Minute
	backoffReset   = 2 * maxBackoff
)

// Actions is what one sync must do to bring the runtime to the pod's spec.
// The executor carries them out in field order.
type Actions struct {
	// KillPod stops every running container of the pod and its sandboxes:
	// the pod is being deleted, has finished, ran past its active
	// deadline, or its sandbox is re-created.
	KillPod bool
	// DeadlineExceeded says the pod is killed because it ran past its
	// spec.activeDeadlineSeconds (the DeadlineExceeded Event).
	DeadlineExceeded bool
	// CreateSandbox asks for a new sandbox with SandboxAttempt.
	CreateSandbox  bool
	SandboxAttempt uint32
	// SandboxID is the ready sandbox new containers join; empty when
	// CreateSandbox (the executor fills in the new one).
	SandboxID string
	// ContainersToKill are running containers to stop before any start.
	ContainersToKill []KillAction
	// ContainersToStart, in order: ephemeral containers first (a debugger
	// never waits for the pod's own containers, which may be the trouble),
	// then at most one init container, or the regular containers.
	ContainersToStart []StartAction
	// EphemeralToEnd are debug containers the agent ends on its own: a
	// stop was requested or a time limit passed. Each ending is recorded
	// before its container, if it has one, is stopped.
	EphemeralToEnd []EndAction
	// EphemeralLost names ephemeral containers that were created once (a
	// witness says so) and that the runtime no longer has: they are never
	// created again, and the loss is told once.
	EphemeralLost []string
	// BackOff lists containers that must restart but wait for their
	// crash-loop backoff; the status shows them as CrashLoopBackOff.
	BackOff []BackOffAction
	// ContainersToRemove are exited instances no longer needed (older than
	// the two newest of a regular or init container).
	ContainersToRemove []string
	// SandboxesToRemove are sandboxes no longer needed, as the kubelet's
	// container GC (evictSandboxes) finds them: not ready, holding no
	// container of any state, and not the pod's newest (any, for a pod
	// gone from the API). A container keeps its sandbox: an exited
	// ephemeral container, the witness that it ran, is never removed, nor
	// the sandbox around it.
	SandboxesToRemove []string
	// RequeueAfter is when the pod wants another sync without any event:
	// the earliest backoff expiry or its active deadline. Zero means no
	// such need.
	RequeueAfter time.Duration
}

// KillAction stops one container.
type KillAction struct {
	ContainerID string
	Name        string
	Type        criconfig.ContainerType
	// Message explains why, for the Killing event.
	Message string
	// GracePeriod, when set, replaces the pod's grace period: a failed
	// liveness or startup probe's own terminationGracePeriodSeconds.
	GracePeriod *int64
}

// EndAction ends one debug (ephemeral) container for a reason of the
// agent's own (debugapi's reasons).
type EndAction struct {
	Name string
	// ContainerID is the container to stop; empty for one never created,
	// which is then never created.
	ContainerID string
	// Running says the container runs and must be stopped.
	Running bool
	Reason  string
	Message string
}

// StartAction starts one container of the pod spec.
type StartAction struct {
	Type criconfig.ContainerType
	// Index into the spec's list for Type (initContainers, containers or
	// ephemeralContainers).
	Index int
	Name  string
	// RestartCount becomes the new container's attempt.
	RestartCount int
	// CreatedID is set when a container was created but never started: it
	// is started as it is, never created a second time.
	CreatedID string
	// Replaces is set for an ephemeral container whose start the runtime
	// aborted because the agent went away (podstate.AbortedStart): that
	// container is removed and the ephemeral container created once more.
	Replaces string
}

// BackOffAction is a restart held back by crash-loop backoff.
type BackOffAction struct {
	Type    criconfig.ContainerType
	Name    string
	Message string
	Until   time.Time
}

// Plan decides what to do for pod given the runtime's state at now. It is a
// pure function: everything it knows is in its arguments, so the rules read
// as table tests. pod is nil when the pod no longer exists in the API.
func Plan(pod *v1.Pod, state *podstate.PodState, now time.Time) Actions {
	a := planPod(pod, state, now)
	a.SandboxesToRemove = oldSandboxes(state, pod == nil)
	return a
}

// planPod is Plan but for the sandboxes to remove, which every case shares.
func planPod(pod *v1.Pod, state *podstate.PodState, now time.Time) Actions {
	if pod == nil || pod.DeletionTimestamp != nil || podFinished(pod, state) {
		return Actions{KillPod: hasRunning(state)}
	}
	if podstate.PastActiveDeadline(pod, now) {
		// The pod failed (the status says DeadlineExceeded): nothing of
		// it runs any more, ephemeral containers included, as the
		// kubelet's.
		kill := hasRunning(state)
		return Actions{KillPod: kill, DeadlineExceeded: kill}
	}
	a := plan(pod, state, now)
	// No event marks the deadline: the pod asks for a sync then.
	if d, ok := podstate.ActiveDeadline(pod); ok {
		if left := d.Sub(now); a.RequeueAfter == 0 || left < a.RequeueAfter {
			a.RequeueAfter = left
		}
	}
	return a
}

// plan is Plan for a pod that is to run.
func plan(pod *v1.Pod, state *podstate.PodState, now time.Time) Actions {
	p := planner{pod: pod, state: state, now: now}
	a := &p.actions
	sb := state.LatestSandbox()
	switch {
	case sb == nil:
		a.CreateSandbox = true
	case !sb.Ready:
		// The sandbox died (node reboot, runtime restart, killed). A pod
		// that never restarts keeps its dead sandbox once anything ran in
		// it: its containers' exits decide its phase. A container whose
		// own policy or rules restart it makes the pod one that restarts,
		// as the kubelet's runOnce check.
		if pod.Spec.RestartPolicy == v1.RestartPolicyNever && len(state.Containers) > 0 && !anyRestartable(pod) {
			return *a
		}
		a.KillPod = hasRunning(state)
		a.CreateSandbox = true
		a.SandboxAttempt = sb.Attempt + 1
	default:
		a.SandboxID = sb.ID
		p.sb = sb
	}

	if a.CreateSandbox {
		// Everything starts over in the new sandbox: the first init
		// container, or all regular containers. Ephemeral containers wait
		// for the next sync, when the sandbox is there to join.
		if len(pod.Spec.InitContainers) > 0 {
			p.start(criconfig.ContainerTypeInit, 0, pod.Spec.InitContainers[0].Name)
		} else {
			for i := range pod.Spec.Containers {
				c := &pod.Spec.Containers[i]
				// As the kubelet: a container that runs once on failure
				// and already succeeded is not run again in the new
				// sandbox.
				if runsOnceOnFailure(pod, c) && succeeded(state.Latest(criconfig.ContainerTypeRegular, c.Name)) {
					continue
				}
				p.start(criconfig.ContainerTypeRegular, i, c.Name)
			}
		}
		p.finish()
		return *a
	}

	// Ephemeral containers first, whatever the others do: the pods people
	// debug are those whose own containers fail to start or crash.
	p.planEphemeral()
	if p.planInit() {
		for i := range pod.Spec.Containers {
			p.planRestartable(criconfig.ContainerTypeRegular, i, &pod.Spec.Containers[i])
		}
	}
	p.finish()
	return *a
}

// withoutVolumes keeps of a what needs no pod volume: the ephemeral
// containers that mount none, and the record of lost ones. It is what a
// sync may still do while the pod's volumes cannot be set up.
func (a Actions) withoutVolumes(pod *v1.Pod) Actions {
	out := Actions{SandboxID: a.SandboxID, EphemeralLost: a.EphemeralLost, SandboxesToRemove: a.SandboxesToRemove}
	if a.SandboxID == "" {
		return out
	}
	for _, st := range a.ContainersToStart {
		if st.Type == criconfig.ContainerTypeEphemeral && len(pod.Spec.EphemeralContainers[st.Index].VolumeMounts) == 0 {
			out.ContainersToStart = append(out.ContainersToStart, st)
		}
	}
	return out
}

// planner holds what every rule of one Plan call reads, and the actions it
// builds.
type planner struct {
	pod   *v1.Pod
	state *podstate.PodState
	// sb is the ready sandbox the pod's containers run in.
	sb      *podstate.Sandbox
	now     time.Time
	actions Actions
}

// start plans a new instance of a container, counting on from its newest
// instance in any sandbox, so that restarts of a pod (sandbox re-creation)
// keep counting as the kubelet's do.
func (p *planner) start(typ criconfig.ContainerType, i int, name string) {
	restarts := 0
	if c := p.state.Latest(typ, name); c != nil {
		restarts = c.Attempt + 1
	}
	p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: typ, Index: i, Name: name, RestartCount: restarts})
}

// startCreated plans the start of an instance that was created but never
// started: it is started as it is, never created a second time.
func (p *planner) startCreated(typ criconfig.ContainerType, i int, cur *podstate.Container) {
	p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: typ, Index: i, Name: cur.Name, RestartCount: cur.Attempt, CreatedID: cur.ID})
}

// planInit plans the init containers, in order, and reports whether all of
// them are done so regular containers may start.
func (p *planner) planInit() bool {
	for i := range p.pod.Spec.InitContainers {
		c := &p.pod.Spec.InitContainers[i]
		cur := p.state.Current(p.sb, criconfig.ContainerTypeInit, c.Name)
		if podstate.IsSidecar(c) {
			// A sidecar lets the next init container start once it has
			// started (its startup probe succeeded), and is restarted
			// whenever it exits.
			p.planRestartable(criconfig.ContainerTypeInit, i, c)
			if !p.state.InitContainerDone(p.pod, i) {
				return false
			}
			continue
		}
		switch {
		case p.state.InitContainerDone(p.pod, i):
			continue
		case cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			p.killUnknown(criconfig.ContainerTypeInit, cur)
		case cur == nil:
			p.start(criconfig.ContainerTypeInit, i, c.Name)
		case cur.Created():
			p.startCreated(criconfig.ContainerTypeInit, i, cur)
		case cur.Running():
		case podstate.ShouldRestart(p.pod, c, cur.ExitCode):
			// Failed: its restart rules and policy, else the pod's,
			// decide, with backoff. Otherwise the pod has failed;
			// podFinished stops it next sync.
			p.restartWithBackoff(criconfig.ContainerTypeInit, i, cur)
		}
		return false
	}
	return true
}

// planRestartable plans a regular container (or a sidecar), restarted by
// its own restart rules and policy, else the pod's (podstate.ShouldRestart).
func (p *planner) planRestartable(typ criconfig.ContainerType, i int, c *v1.Container) {
	cur := p.state.Current(p.sb, typ, c.Name)
	switch {
	case cur == nil:
		p.start(typ, i, c.Name)
	case cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		p.killUnknown(typ, cur)
	case cur.Created():
		p.startCreated(typ, i, cur)
	case cur.Running() && p.state.Probes[cur.ID].Failed != "":
		p.killUnhealthy(typ, c, cur)
	case cur.Running():
		if cur.Hash != "" && cur.Hash != criconfig.HashContainer(c) {
			// The spec changed under a running container (an image
			// update): replace it, as the kubelet does.
			p.actions.ContainersToKill = append(p.actions.ContainersToKill, KillAction{ContainerID: cur.ID, Name: c.Name, Type: typ,
				Message: fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)})
			p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: typ, Index: i, Name: c.Name, RestartCount: cur.Attempt + 1})
		}
	case cur.Exited():
		if podstate.ShouldRestart(p.pod, c, cur.ExitCode) {
			p.restartWithBackoff(typ, i, cur)
		}
	}
}

// planEphemeral starts each ephemeral container that was never created,
// and nothing else: an ephemeral container is never restarted, whatever
// its exit, and never created again once any witness says it was (see
// podstate.EphemeralCreated), even if the runtime lost it. Two exceptions
// keep "at least once": a container created but never started is started,
// and one whose start the agent's own death aborted is replaced, at most
// podstate.MaxReplacements times.
func (p *planner) planEphemeral() {
	stop := debugapi.StopRequested(p.pod)
	for i, ec := range p.pod.Spec.EphemeralContainers {
		cur := p.state.Latest(criconfig.ContainerTypeEphemeral, ec.Name)
		if p.endEphemeral(ec.Name, cur, slices.Contains(stop, ec.Name)) {
			continue
		}
		switch {
		case cur == nil && podstate.EphemeralNeverRun(p.pod, p.state, ec.Name) != nil:
			// Denied by the debug policy, or stopped before it was
			// created: it never runs.
		case cur == nil && podstate.EphemeralCreated(p.pod, p.state, ec.Name):
			p.actions.EphemeralLost = append(p.actions.EphemeralLost, ec.Name)
		case cur == nil:
			p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: criconfig.ContainerTypeEphemeral, Index: i, Name: ec.Name})
		case cur.SandboxID != p.actions.SandboxID:
			// Its sandbox is gone: it ran (or was meant to run) in a pod
			// that no longer exists as it was.
		case cur.Created():
			p.startCreated(criconfig.ContainerTypeEphemeral, i, cur)
		case p.state.Replaced(cur):
			p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: criconfig.ContainerTypeEphemeral, Index: i, Name: ec.Name, Replaces: cur.ID})
		}
	}
}

// endEphemeral plans the end of debug container name, whose newest
// instance is cur (nil: never created), when a stop is requested or one of
// its time limits passed, and reports whether it did: nothing else is then
// planned for it. A container the agent ended already is ended again while
// it runs or could still start (the last stop failed, or the agent died
// before it). Time limits that have not passed yet ask for a sync when
// they will.
func (p *planner) endEphemeral(name string, cur *podstate.Container, stopRequested bool) bool {
	end := func(reason, msg string) bool {
		e := EndAction{Name: name, Reason: reason, Message: msg}
		if cur != nil {
			e.ContainerID, e.Running = cur.ID, cur.Running()
		}
		p.actions.EphemeralToEnd = append(p.actions.EphemeralToEnd, e)
		return true
	}
	if cur == nil {
		if stopRequested && podstate.EphemeralNeverRun(p.pod, p.state, name) == nil && !podstate.EphemeralCreated(p.pod, p.state, name) {
			return end(debugapi.ReasonStopRequested, fmt.Sprintf("Stopped before it started, as the pod's annotation %s requests", debugapi.StopAnnotation))
		}
		return false
	}
	// An instance that could still run: running, created and never
	// started, or one the plan would create again (Replaced).
	live := cur.SandboxID == p.actions.SandboxID && (cur.Running() || cur.Created() || p.state.Replaced(cur))
	if !live {
		return false
	}
	if e := p.state.AgentEnding(cur); e != nil {
		return end(e.Reason, e.Message)
	}
	if stopRequested {
		if !cur.Running() {
			return end(debugapi.ReasonStopRequested, fmt.Sprintf("Stopped before it started, as the pod's annotation %s requests", debugapi.StopAnnotation))
		}
		return end(debugapi.ReasonStopRequested, fmt.Sprintf("Stopped as the pod's annotation %s requests", debugapi.StopAnnotation))
	}
	if !cur.Running() || cur.StartedAt.IsZero() {
		return false
	}
	if d := cur.MaxDuration; d > 0 {
		left := cur.StartedAt.Add(d).Sub(p.now)
		if left <= 0 {
			return end(debugapi.ReasonDeadlineExceeded, fmt.Sprintf("Ran longer than its maxDuration of %s", d))
		}
		p.requeue(left)
	}
	// Without session tracking (no entry) nothing is ever idle.
	if act, ok := p.state.Sessions[cur.ID]; cur.IdleTimeout > 0 && ok && !act.Active {
		since := cur.StartedAt
		if act.Last.After(since) {
			since = act.Last
		}
		left := since.Add(cur.IdleTimeout).Sub(p.now)
		if left <= 0 {
			return end(debugapi.ReasonSessionIdle, fmt.Sprintf("No attach or exec session for its idleTimeout of %s", cur.IdleTimeout))
		}
		p.requeue(left)
	}
	return false
}

// requeue asks for a sync after d at the latest.
func (p *planner) requeue(d time.Duration) {
	if p.actions.RequeueAfter == 0 || d < p.actions.RequeueAfter {
		p.actions.RequeueAfter = d
	}
}

// killUnknown stops a container the runtime cannot tell the state of, as
// the kubelet does: once it has exited, its restart policy decides.
func (p *planner) killUnknown(typ criconfig.ContainerType, cur *podstate.Container) {
	p.actions.ContainersToKill = append(p.actions.ContainersToKill, KillAction{ContainerID: cur.ID, Name: cur.Name, Type: typ,
		Message: fmt.Sprintf("Container %s is in an unknown state, it will be killed", cur.Name)})
}

// killUnhealthy stops a container whose liveness or startup probe failed
// past its failureThreshold, as the kubelet does, with the probe's own
// terminationGracePeriodSeconds when it has one. Once it has exited, its
// restart policy decides, with backoff.
func (p *planner) killUnhealthy(typ criconfig.ContainerType, c *v1.Container, cur *podstate.Container) {
	failed := p.state.Probes[cur.ID].Failed
	probe := c.LivenessProbe
	if failed == podstate.Startup {
		probe = c.StartupProbe
	}
	// The kubelet's words: a sidecar's are its own; a container's say
	// whether it comes back, by its restart policy (the rules need an
	// exit code), else the pod's.
	msg := fmt.Sprintf("Container %s failed %s probe", c.Name, strings.ToLower(string(failed)))
	switch {
	case typ == criconfig.ContainerTypeInit:
		msg = fmt.Sprintf("Init container %s failed %s probe", c.Name, strings.ToLower(string(failed)))
	case c.RestartPolicy != nil && *c.RestartPolicy != v1.ContainerRestartPolicyNever,
		c.RestartPolicy == nil && p.pod.Spec.RestartPolicy != v1.RestartPolicyNever:
		msg += ", will be restarted"
	}
	k := KillAction{ContainerID: cur.ID, Name: c.Name, Type: typ, Message: msg}
	if probe != nil && probe.TerminationGracePeriodSeconds != nil {
		g := *probe.TerminationGracePeriodSeconds
		k.GracePeriod = &g
	}
	p.actions.ContainersToKill = append(p.actions.ContainersToKill, k)
}

func (p *planner) restartWithBackoff(typ criconfig.ContainerType, i int, cur *podstate.Container) {
	delay := restartDelay(cur)
	until := cur.FinishedAt.Add(delay)
	if p.now.Before(until) {
		p.actions.BackOff = append(p.actions.BackOff, BackOffAction{Type: typ, Name: cur.Name, Until: until,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, cur.Name, p.pod.Name, p.pod.Namespace, p.pod.UID)})
		return
	}
	p.actions.ContainersToStart = append(p.actions.ContainersToStart, StartAction{Type: typ, Index: i, Name: cur.Name, RestartCount: cur.Attempt + 1})
}

// finish adds what every plan that keeps the pod needs: garbage collection
// of old instances and the next timed sync.
func (p *planner) finish() {
	a := &p.actions
	for _, typ := range []criconfig.ContainerType{criconfig.ContainerTypeInit, criconfig.ContainerTypeRegular} {
		seen := map[string]int{}
		for i := range p.state.Containers {
			c := &p.state.Containers[i]
			if c.Type != typ {
				continue
			}
			seen[c.Name]++
			// The newest two are kept: the current one and the previous
			// one that `kubectl logs --previous` reads.
			if seen[c.Name] > 2 && !c.Running() {
				a.ContainersToRemove = append(a.ContainersToRemove, c.ID)
			}
		}
	}
	for _, b := range a.BackOff {
		if d := b.Until.Sub(p.now); d > 0 {
			p.requeue(d)
		}
	}
}

// oldSandboxes returns the sandboxes of state to remove, by the kubelet's
// rule: a sandbox that is ready or holds any container stays; of the
// others, all go for a pod that is gone, all but the newest sandbox for
// one that exists. The newest stays even when it is dead and empty: it
// carries the attempt the next sandbox counts on from.
func oldSandboxes(state *podstate.PodState, gone bool) []string {
	if state == nil {
		return nil
	}
	holding := make(map[string]bool, len(state.Containers))
	for i := range state.Containers {
		holding[state.Containers[i].SandboxID] = true
	}
	var out []string
	for i, sb := range state.Sandboxes {
		if (i == 0 && !gone) || sb.Ready || holding[sb.ID] {
			continue
		}
		out = append(out, sb.ID)
	}
	return out
}

// restartDelay is the crash-loop backoff before restarting c, derived from
// CRI state alone so it survives an agent restart.
func restartDelay(c *podstate.Container) time.Duration {
	if c.Attempt == 0 || (!c.StartedAt.IsZero() && c.FinishedAt.Sub(c.StartedAt) > backoffReset) {
		return 0
	}
	d := initialBackoff
	for i := 1; i < c.Attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// runsOnceOnFailure reports whether c's effective restart policy is
// OnFailure: the container's own when it has one, else the pod's.
func runsOnceOnFailure(pod *v1.Pod, c *v1.Container) bool {
	if c.RestartPolicy != nil {
		return *c.RestartPolicy == v1.ContainerRestartPolicyOnFailure
	}
	return pod.Spec.RestartPolicy == v1.RestartPolicyOnFailure
}

func anyRestartable(pod *v1.Pod) bool {
	for i := range pod.Spec.Containers {
		if podstate.Restartable(pod, &pod.Spec.Containers[i]) {
			return true
		}
	}
	return false
}

func succeeded(c *podstate.Container) bool {
	return c != nil && c.Exited() && c.ExitCode == 0
}

func hasRunning(state *podstate.PodState) bool {
	if state == nil {
		return false
	}
	for i := range state.Containers {
		if state.Containers[i].Running() {
			return true
		}
	}
	for _, sb := range state.Sandboxes {
		if sb.Ready {
			return true
		}
	}
	return false
}

// podFinished reports whether the pod has reached a final phase: every
// regular container exited and none will restart, or an init container
// failed and will not restart (podstate.ShouldRestart: the container's
// restart rules and policy, else the pod's), as the kubelet's getPhase.
func podFinished(pod *v1.Pod, state *podstate.PodState) bool {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return true
	}
	sb := state.LatestSandbox()
	if sb == nil {
		return false
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if cur := state.Current(sb, criconfig.ContainerTypeInit, c.Name); !podstate.IsSidecar(c) && cur != nil && cur.Exited() && cur.ExitCode != 0 && !podstate.ShouldRestart(pod, c, cur.ExitCode) {
			return true
		}
	}
	if len(pod.Spec.Containers) == 0 {
		return false
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur := state.Latest(criconfig.ContainerTypeRegular, c.Name)
		if cur == nil || !cur.Exited() || podstate.ShouldRestart(pod, c, cur.ExitCode) {
			return false
		}
	}
	return true
}
