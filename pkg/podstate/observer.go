package podstate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// Runtime is the part of the CRI runtime service an Observer reads
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
}

// ExitSource tells container exits the runtime announced before its CRI
// service records them: containerd publishes a task's exit, then its CRI
// plugin deletes the task and only then reports the container exited,
// tens of milliseconds later (runtimeevents.Watcher satisfies it).
type ExitSource interface {
	// Exited returns the exit code and time of container id's process,
	// and whether it was OOM-killed; ok false when no exit is known.
	Exited(id string) (code int32, at time.Time, oom, ok bool)
}

// Observer reads pods' states from the runtime. It caches ContainerStatus
// answers by container ID and state: an exited container never changes
// again, and a running one changes nothing a PodState holds until its state
// does, which ListContainers reports. It is safe for concurrent use; one
// Observer serves the sync loop and the lookups of logs and sessions, so
// they share that cache.
type Observer struct {
	runtime Runtime
	// records, when set, adds the pods' start records to their states.
	records *RecordStore
	// exits, when set, announces exits the runtime does not report yet.
	exits ExitSource
	mu    sync.Mutex
	cache map[string]*runtimeapi.ContainerStatus
	// messages holds exited containers' termination messages by ID.
	messages map[string]string
	// addrs holds, by pod, the addresses of its newest ready sandbox: the
	// network is set up before the sandbox is ready, and a sandbox's
	// addresses never change after.
	addrs map[types.UID]sandboxAddrs
}

// sandboxAddrs are a sandbox's addresses.
type sandboxAddrs struct {
	id  string
	ips []string
}

// ObserverOption configures an Observer.
type ObserverOption func(*Observer)

// WithRecords makes the Observer read the pods' start records from store
// into PodState.Records.
func WithRecords(store *RecordStore) ObserverOption {
	return func(o *Observer) { o.records = store }
}

// WithExits makes the Observer report an ephemeral container the runtime
// still lists running as exited when exits knows its exit, as the runtime
// will once it records it: with the same exit code, finish time and
// reason. Ephemeral containers only: their exit decides nothing but their
// status. Another container's exit starts its restart or the next
// container, which must wait until the runtime agrees: a sandbox being
// removed stops its containers first, and acting on the announced exit
// restarted one in the dying sandbox.
func WithExits(exits ExitSource) ObserverOption {
	return func(o *Observer) { o.exits = exits }
}

// NewObserver returns an Observer that reads rt.
func NewObserver(rt Runtime, opts ...ObserverOption) *Observer {
	o := &Observer{runtime: rt, cache: map[string]*runtimeapi.ContainerStatus{}, messages: map[string]string{}, addrs: map[types.UID]sandboxAddrs{}}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Observe returns every sandbox and container labelled with uid, sorted
// newest first. Objects without the agent's labels are not the pod's and
// are left out. An error means the runtime could not be read; the state
// is then unknown, never empty.
func (o *Observer) Observe(ctx context.Context, uid types.UID) (*PodState, error) {
	selector := map[string]string{criconfig.LabelPodUID: string(uid)}
	sandboxes, err := o.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	containers, err := o.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	state := &PodState{}
	for _, s := range sandboxes {
		sb := Sandbox{
			ID:        s.GetId(),
			Attempt:   s.GetMetadata().GetAttempt(),
			Ready:     s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY,
			CreatedAt: time.Unix(0, s.GetCreatedAt()),
		}
		state.Sandboxes = append(state.Sandboxes, sb)
	}
	state.Sort()
	// Only the newest ready sandbox's addresses matter: they are the pod's.
	if sb := state.LatestSandbox(); sb != nil && sb.Ready {
		if sb.IPs, err = o.sandboxIPs(ctx, uid, sb.ID); err != nil {
			return nil, err
		}
	} else {
		o.mu.Lock()
		delete(o.addrs, uid)
		o.mu.Unlock()
	}
	seen := make(map[string]bool, len(containers))
	for _, c := range containers {
		info, err := criconfig.ParseContainer(c.GetLabels(), c.GetAnnotations())
		if err != nil {
			continue
		}
		seen[c.GetId()] = true
		st, err := o.status(ctx, c)
		if err != nil {
			return nil, err
		}
		image := st.GetImage().GetUserSpecifiedImage()
		if image == "" {
			// Runtimes before CRI's user_specified_image report only
			// the spec's image on the listed container.
			image = c.GetImage().GetImage()
		}
		ctr := Container{
			ID:                       c.GetId(),
			SandboxID:                c.GetPodSandboxId(),
			Name:                     info.ContainerName,
			Type:                     info.Type,
			Attempt:                  int(c.GetMetadata().GetAttempt()),
			Hash:                     info.Hash,
			State:                    st.GetState(),
			Image:                    image,
			ImageRef:                 st.GetImageRef(),
			CreatedAt:                time.Unix(0, st.GetCreatedAt()),
			StartedAt:                unixNanoOrZero(st.GetStartedAt()),
			FinishedAt:               unixNanoOrZero(st.GetFinishedAt()),
			ExitCode:                 st.GetExitCode(),
			Reason:                   st.GetReason(),
			Message:                  o.exitMessage(c.GetId(), st, info),
			TerminationMessagePath:   info.TerminationMessagePath,
			TerminationMessagePolicy: string(info.TerminationMessagePolicy),
			LogPath:                  st.GetLogPath(),
		}
		if info.Type == criconfig.ContainerTypeEphemeral {
			ctr.MaxDuration = durationAnnotation(c.GetAnnotations(), debugapi.MaxDurationAnnotation)
			ctr.IdleTimeout = durationAnnotation(c.GetAnnotations(), debugapi.IdleTimeoutAnnotation)
		}
		o.announcedExit(&ctr, st, info)
		state.Containers = append(state.Containers, ctr)
	}
	o.forgetExcept(uid, seen)
	state.Sort()
	if o.records != nil {
		if state.Records, err = o.records.List(uid); err != nil {
			return nil, err
		}
	}
	return state, nil
}

// sandboxIPs returns the addresses of the pod's ready sandbox id, asking
// the runtime only for a sandbox not asked about before.
func (o *Observer) sandboxIPs(ctx context.Context, uid types.UID, id string) ([]string, error) {
	o.mu.Lock()
	a, ok := o.addrs[uid]
	o.mu.Unlock()
	if ok && a.id == id {
		return a.ips, nil
	}
	resp, err := o.runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("get status of pod sandbox %s: %w", id, err)
	}
	ips := SandboxIPs(resp.GetStatus())
	o.mu.Lock()
	o.addrs[uid] = sandboxAddrs{id: id, ips: ips}
	o.mu.Unlock()
	return ips, nil
}

func (o *Observer) status(ctx context.Context, c *runtimeapi.Container) (*runtimeapi.ContainerStatus, error) {
	o.mu.Lock()
	cached := o.cache[c.GetId()]
	o.mu.Unlock()
	if cached != nil && cached.GetState() == c.GetState() {
		return cached, nil
	}
	resp, err := o.runtime.ContainerStatus(ctx, c.GetId(), false)
	if err != nil {
		return nil, fmt.Errorf("get status of container %s: %w", c.GetId(), err)
	}
	st := resp.GetStatus()
	o.mu.Lock()
	o.cache[c.GetId()] = st
	o.mu.Unlock()
	return st, nil
}

// announcedExit reports c, an ephemeral container the runtime lists
// running, as exited when the exit source knows it exited (WithExits).
// Reason and message are the runtime's own rules (containerd's CRI plugin:
// OOMKilled, else Completed or Error); the message is the termination
// message file's only, read again until the runtime reports the exit
// itself: a log tail read now could miss output the runtime has not yet
// copied.
func (o *Observer) announcedExit(c *Container, st *runtimeapi.ContainerStatus, info criconfig.ContainerInfo) {
	if o.exits == nil || !c.Running() || c.Type != criconfig.ContainerTypeEphemeral {
		return
	}
	code, at, oom, ok := o.exits.Exited(c.ID)
	if !ok {
		return
	}
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = at
	c.Reason = ExitReason(code, oom)
	c.Message = terminationMessage(st, info)
}

// The reasons of an exited container as containerd's CRI plugin gives
// them, and the kubelet reports them in Terminated.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// ExitReason is the reason of a container that exited with code, as
// containerd's CRI plugin gives it: OOMKilled after an OOM kill, else
// Completed for exit 0, else Error.
func ExitReason(code int32, oom bool) string {
	switch {
	case oom:
		return ReasonOOMKilled
	case code == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}

// forgetExcept drops cached statuses of the pod's containers that are gone.
func (o *Observer) forgetExcept(uid types.UID, seen map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, st := range o.cache {
		if st.GetLabels()[criconfig.LabelPodUID] == string(uid) && !seen[id] {
			delete(o.cache, id)
			delete(o.messages, id)
		}
	}
}

// exitMessage is the Terminated message of an exited container, as the
// kubelet reports it: the termination message file the container wrote,
// else (policy FallbackToLogsOnError, failed exit) the tail of its log,
// else the runtime's own message. It is read once and kept, as the exited
// container's status is.
func (o *Observer) exitMessage(id string, st *runtimeapi.ContainerStatus, info criconfig.ContainerInfo) string {
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		return st.GetMessage()
	}
	o.mu.Lock()
	msg, ok := o.messages[id]
	o.mu.Unlock()
	if ok {
		return msg
	}
	msg = terminationMessage(st, info)
	o.mu.Lock()
	o.messages[id] = msg
	o.mu.Unlock()
	return msg
}

// SandboxIPs returns a sandbox's addresses from its CRI status, primary
// first; none for a sandbox without a network of its own.
func SandboxIPs(st *runtimeapi.PodSandboxStatus) []string {
	n := st.GetNetwork()
	if n.GetIp() == "" {
		return nil
	}
	ips := []string{n.GetIp()}
	for _, ip := range n.GetAdditionalIps() {
		ips = append(ips, ip.GetIp())
	}
	return ips
}

func unixNanoOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// durationAnnotation reads a duration annotation; a missing or malformed
// one is no limit, as ParseContainer reads a bad annotation as its zero
// value: a limit is never made up.
func durationAnnotation(annotations map[string]string, key string) time.Duration {
	d, err := time.ParseDuration(annotations[key])
	if err != nil || d < 0 {
		return 0
	}
	return d
}
