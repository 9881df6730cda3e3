package podstate

import (
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// The exactly-once rules of ephemeral containers. An ephemeral container is
// created at most once: any witness that it was created forbids creating it
// again, even when the runtime no longer has it. And at least once: a start
// aborted by the agent's own death is not the container's failure, so the
// container is replaced, a bounded number of times.

// MaxReplacements is how many times an ephemeral container whose start
// never ran the command (Replaced) is created again. Each replacement is
// recorded before it is made, so an agent that a start kills over and over
// cannot loop; the bound is high enough for a crash-looping agent and a
// restarting runtime to interrupt one start many times (make chaos: 20
// kills and 5 runtime restarts during 100 starts interrupted one start 4
// times).
const MaxReplacements = 10

// A start containerd gave up because its caller went away: the CRI call's
// context was cancelled, or the shim was killed along with the agent's
// process group. Or a start the runtime's own restart interrupted: the
// agent's next StartContainer on the container, still CREATED, finds the
// task or the shim directory the interrupted call left ("already exists",
// "file exists"). containerd's recovery keeps a container CREATED only when
// its task never started (one that did is reported running or exited), so
// that command never ran either. Only an abort while the task was being
// created proves the command never ran: containerd wraps that in "failed to
// create containerd task". Once the task exists ("failed to start
// containerd task"), the shim may already have started the process, which
// containerd then kills: the command ran, if only for a moment, and running
// it again would be a second run.
const abortedCreate = "failed to create containerd task"

var abortedStartMessages = []string{
	"context canceled",
	"context deadline exceeded",
	"signal: killed",
	"already exists",
	"file exists",
}

// EphemeralCreated reports whether the ephemeral container name of pod was
// ever created, by any witness: a runtime container of that name in any
// sandbox, its start record, or the pod's reported status naming it (a
// container ID, or a running or terminated state). The reported status
// counts because a record can be lost with the node's disk while the API
// server still remembers. A record without a container ID is a
// replacement under way (see Record): the container it replaces was
// removed on purpose, and neither the record nor the status, which may
// still name that container, counts.
func EphemeralCreated(pod *v1.Pod, s *PodState, name string) bool {
	if s.Latest(criconfig.ContainerTypeEphemeral, name) != nil {
		return true
	}
	if r, ok := s.Records[name]; ok {
		return r.ContainerID != "" || r.Unreadable
	}
	cs := ReportedEphemeral(pod, name)
	return cs != nil && (cs.ContainerID != "" || cs.State.Running != nil || cs.State.Terminated != nil)
}

// EphemeralNeverRun returns how ephemeral container name of pod ended
// before it was ever created (the debug policy denied it, or a stop was
// requested first), or nil. Its start record says so, or, when the record
// is gone with the node's disk, the pod's reported status does: Terminated
// by one of the agent's own reasons with no container. Such a container is
// never created.
func EphemeralNeverRun(pod *v1.Pod, s *PodState, name string) *Ending {
	if s.Latest(criconfig.ContainerTypeEphemeral, name) != nil {
		return nil
	}
	if r, ok := s.Records[name]; ok {
		if r.Ended != nil && r.ContainerID == "" {
			return r.Ended
		}
		return nil
	}
	cs := ReportedEphemeral(pod, name)
	if cs == nil || cs.ContainerID != "" || cs.State.Terminated == nil || !neverRunReason(cs.State.Terminated.Reason) {
		return nil
	}
	t := cs.State.Terminated
	return &Ending{Reason: t.Reason, Message: t.Message, At: t.FinishedAt.Time}
}

// neverRunReason says whether reason is one a debug container that never
// ran ends with.
func neverRunReason(reason string) bool {
	return reason == debugapi.ReasonPolicyDenied || reason == debugapi.ReasonStopRequested
}

// AgentEnding returns how the agent ended ephemeral container c, from its
// start record, or nil when the container ended by itself (or runs).
func (s *PodState) AgentEnding(c *Container) *Ending {
	if r, ok := s.Records[c.Name]; ok && r.Ended != nil && r.ContainerID == c.ID {
		return r.Ended
	}
	return nil
}

// ReportedEphemeral returns the status of ephemeral container name that
// the pod's status in the API holds, or nil.
func ReportedEphemeral(pod *v1.Pod, name string) *v1.ContainerStatus {
	for i := range pod.Status.EphemeralContainerStatuses {
		if cs := &pod.Status.EphemeralContainerStatuses[i]; cs.Name == name {
			return cs
		}
	}
	return nil
}

// AbortedStart reports whether c never ran because the runtime aborted its
// start when its caller, the agent, went away, or found the remains of a
// start its own restart interrupted: it exited without a start time, while
// its task was being created, and the runtime's message says why. A start
// the runtime refused for the container's own reasons (an executable that
// does not exist) is not aborted, and neither is one aborted once the task
// existed, whose process may have run: their exits are final.
func AbortedStart(c *Container) bool {
	if !createFailed(c) {
		return false
	}
	for _, m := range abortedStartMessages {
		if strings.Contains(c.Message, m) {
			return true
		}
	}
	return false
}

// createFailed reports whether c exited without ever starting, its start
// having failed while the runtime created its task: its command never ran.
func createFailed(c *Container) bool {
	return c.Exited() && c.StartedAt.IsZero() && strings.Contains(c.Message, abortedCreate)
}

// Replaced reports whether ephemeral container c, the newest of its name,
// is to be created again because its start never ran the command for a
// reason not its own: the agent's death aborted it (AbortedStart), or a
// start of it was interrupted (by the runtime's restart, or the agent's
// death before the runtime answered) and the start after that failed
// while creating the task (Record.StartInterrupted). It is in the
// pod's newest sandbox, which is ready, and replacements are left. The
// plan replaces it, and the status shows it waiting rather than ended, by
// this one rule.
func (s *PodState) Replaced(c *Container) bool {
	sb := s.LatestSandbox()
	rec := s.Records[c.Name]
	interrupted := rec.StartInterrupted != "" && rec.StartInterrupted == c.ID && createFailed(c)
	return sb != nil && sb.Ready && c.SandboxID == sb.ID &&
		(AbortedStart(c) || interrupted) && rec.Replacements < MaxReplacements
}
