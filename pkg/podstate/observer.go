package podstate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// Runtime is the part of the CRI runtime service an Observer reads
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
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
	mu      sync.Mutex
	cache   map[string]*runtimeapi.ContainerStatus
	// messages holds exited containers' termination messages by ID.
	messages map[string]string
}

// ObserverOption configures an Observer.
type ObserverOption func(*Observer)

// WithRecords makes the Observer read the pods' start records from store
// into PodState.Records.
func WithRecords(store *RecordStore) ObserverOption {
	return func(o *Observer) { o.records = store }
}

// NewObserver returns an Observer that reads rt.
func NewObserver(rt Runtime, opts ...ObserverOption) *Observer {
	o := &Observer{runtime: rt, cache: map[string]*runtimeapi.ContainerStatus{}, messages: map[string]string{}}
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
		resp, err := o.runtime.PodSandboxStatus(ctx, sb.ID, false)
		if err != nil {
			return nil, fmt.Errorf("get status of pod sandbox %s: %w", sb.ID, err)
		}
		sb.IPs = SandboxIPs(resp.GetStatus())
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
		state.Containers = append(state.Containers, Container{
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
		})
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
