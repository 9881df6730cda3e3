package podstate

import (
	"sort"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// PodState is what the CRI runtime holds for one pod: every sandbox and
// every container labelled with the pod's UID, whatever their state. It is
// the observed half of the plan's input.
type PodState struct {
	// Sandboxes, newest first.
	Sandboxes []Sandbox
	// Containers of the pod in any of its sandboxes, newest first.
	Containers []Container
	// Records are the start records of the pod's ephemeral containers, by
	// name: each says the container was created once, whatever the
	// runtime still holds.
	Records map[string]Record
	// Probes holds what the liveness, readiness and startup probes say of
	// the pod's running regular containers and sidecars, by container ID.
	// The sync loop fills it from its prober after each observation; nil
	// when no prober runs, and then every running container counts as
	// started and ready.
	Probes map[string]Probed
	// Sessions says, by container ID, when a debug container last had an
	// exec or attach session, for its idle timeout. The sync loop fills it
	// for running ephemeral containers with an IdleTimeout; nil otherwise.
	Sessions map[string]SessionActivity
}

// SessionActivity is when a container last had a debug session.
type SessionActivity struct {
	// Active: a session to it is open now.
	Active bool
	// Last is when the last session ended (or the tracker began, when it
	// saw none): the idle clock's start.
	Last time.Time
}

// ProbeType names a kind of probe, as the kubelet's Events and metrics
// word it.
type ProbeType string

// The probe types.
const (
	Liveness  ProbeType = "Liveness"
	Readiness ProbeType = "Readiness"
	Startup   ProbeType = "Startup"
)

// Probed is what the probes say of one running container.
type Probed struct {
	// Started: its startup probe succeeded, or it has none.
	Started bool
	// Ready: its readiness probe's verdict (false until the first
	// success), or Started when it has none.
	Ready bool
	// Failed is Liveness or Startup once that probe failed failureThreshold
	// times in a row: the container is to be killed, and its restart
	// policy decides what follows. Empty otherwise.
	Failed ProbeType
}

// Sandbox is one CRI pod sandbox of the pod.
type Sandbox struct {
	ID        string
	Attempt   uint32
	Ready     bool
	CreatedAt time.Time
	// IPs are the pod's addresses, primary first; empty for host network.
	IPs []string
}

// Container is one CRI container of the pod, as CreateContainer labelled it
// and ContainerStatus last reported it.
type Container struct {
	ID        string
	SandboxID string
	Name      string
	Type      criconfig.ContainerType
	// Attempt is the restart count the container was created with.
	Attempt int
	Hash    string
	State   runtimeapi.ContainerState
	// Image is the image the spec asked for; ImageRef the ID it resolved to.
	Image, ImageRef string
	CreatedAt       time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
	ExitCode        int32
	// Reason and Message are the runtime's words about an exit, e.g.
	// OOMKilled; Message may hold the termination message.
	Reason, Message string
	// TerminationMessagePath and TerminationMessagePolicy come from the
	// container's annotations, for the status's termination message.
	TerminationMessagePath   string
	TerminationMessagePolicy string
	// LogPath is the container's log file on the node.
	LogPath string
	// MaxDuration and IdleTimeout are the time limits a debug container
	// was created with (debugapi's annotations); zero: none.
	MaxDuration, IdleTimeout time.Duration
}

// Running reports whether the container's process runs.
func (c *Container) Running() bool { return c.State == runtimeapi.ContainerState_CONTAINER_RUNNING }

// Exited reports whether the container ran and stopped.
func (c *Container) Exited() bool { return c.State == runtimeapi.ContainerState_CONTAINER_EXITED }

// Created reports whether the container exists but was never started: a
// crash between CreateContainer and StartContainer leaves one behind.
func (c *Container) Created() bool { return c.State == runtimeapi.ContainerState_CONTAINER_CREATED }

// LatestSandbox returns the newest sandbox, or nil when there is none.
func (s *PodState) LatestSandbox() *Sandbox {
	if s == nil || len(s.Sandboxes) == 0 {
		return nil
	}
	return &s.Sandboxes[0]
}

// Latest returns the newest container of that type and name in any sandbox,
// or nil.
func (s *PodState) Latest(typ criconfig.ContainerType, name string) *Container {
	if s == nil {
		return nil
	}
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Type == typ && c.Name == name {
			return c
		}
	}
	return nil
}

// Instances returns every container of that type and name, newest first.
func (s *PodState) Instances(typ criconfig.ContainerType, name string) []*Container {
	var out []*Container
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Type == typ && c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Sort orders sandboxes and containers newest first, the order the plan
// relies on. Ties (same creation time) fall back to the higher attempt.
func (s *PodState) Sort() {
	sort.SliceStable(s.Sandboxes, func(i, j int) bool {
		a, b := s.Sandboxes[i], s.Sandboxes[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.Attempt > b.Attempt
	})
	sort.SliceStable(s.Containers, func(i, j int) bool {
		a, b := s.Containers[i], s.Containers[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.Attempt > b.Attempt
	})
}

// ContainerKey names one container of a pod spec.
type ContainerKey struct {
	Type criconfig.ContainerType
	Name string
}

// Waiting is why a container is not running: a Waiting reason and message
// of the container status, as the kubelet words them.
type Waiting struct {
	Reason  string
	Message string
}
