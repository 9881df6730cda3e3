package kuberuntime

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// observer reads a pod's state from the runtime. It caches ContainerStatus
// answers by container ID and state: an exited container never changes
// again, and a running one changes nothing the plan reads until its state
// does, which ListContainers reports.
type observer struct {
	runtime Runtime
	mu      sync.Mutex
	cache   map[string]*runtimeapi.ContainerStatus
}

func newObserver(rt Runtime) *observer {
	return &observer{runtime: rt, cache: map[string]*runtimeapi.ContainerStatus{}}
}

// observe returns every sandbox and container labelled with uid, sorted
// newest first. Objects without our labels are not the pod's and are left out.
func (o *observer) observe(ctx context.Context, uid types.UID) (*PodState, error) {
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
		if n := resp.GetStatus().GetNetwork(); n != nil && n.GetIp() != "" {
			sb.IPs = append(sb.IPs, n.GetIp())
			for _, ip := range n.GetAdditionalIps() {
				sb.IPs = append(sb.IPs, ip.GetIp())
			}
		}
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
		state.Containers = append(state.Containers, Container{
			ID:                       c.GetId(),
			SandboxID:                c.GetPodSandboxId(),
			Name:                     info.ContainerName,
			Type:                     info.Type,
			Attempt:                  int(c.GetMetadata().GetAttempt()),
			Hash:                     info.Hash,
			State:                    st.GetState(),
			Image:                    st.GetImage().GetUserSpecifiedImage(),
			ImageRef:                 st.GetImageRef(),
			CreatedAt:                time.Unix(0, st.GetCreatedAt()),
			StartedAt:                unixNanoOrZero(st.GetStartedAt()),
			FinishedAt:               unixNanoOrZero(st.GetFinishedAt()),
			ExitCode:                 st.GetExitCode(),
			Reason:                   st.GetReason(),
			Message:                  st.GetMessage(),
			TerminationMessagePath:   info.TerminationMessagePath,
			TerminationMessagePolicy: string(info.TerminationMessagePolicy),
			LogPath:                  st.GetLogPath(),
		})
		if img := state.Containers[len(state.Containers)-1].Image; img == "" {
			state.Containers[len(state.Containers)-1].Image = c.GetImage().GetImage()
		}
	}
	o.forgetExcept(uid, seen)
	state.Sort()
	return state, nil
}

func (o *observer) status(ctx context.Context, c *runtimeapi.Container) (*runtimeapi.ContainerStatus, error) {
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
func (o *observer) forgetExcept(uid types.UID, seen map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, st := range o.cache {
		if st.GetLabels()[criconfig.LabelPodUID] == string(uid) && !seen[id] {
			delete(o.cache, id)
		}
	}
}

func unixNanoOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
