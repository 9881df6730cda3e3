package kuberuntime

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
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
	// messages holds exited containers' termination messages by ID.
	messages map[string]string
}

func newObserver(rt Runtime) *observer {
	return &observer{runtime: rt, cache: map[string]*runtimeapi.ContainerStatus{}, messages: map[string]string{}}
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
			delete(o.messages, id)
		}
	}
}

// exitMessage is the Terminated message of an exited container, as the
// kubelet reports it: the termination message file the container wrote,
// else (policy FallbackToLogsOnError, failed exit) the tail of its log,
// else the runtime's own message. It is read once and kept, as the exited
// container's status is.
func (o *observer) exitMessage(id string, st *runtimeapi.ContainerStatus, info criconfig.ContainerInfo) string {
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

// Limits of a termination message, as the kubelet's: the file is read up
// to 4 KiB; the log fallback takes at most 80 lines and 2 KiB.
const (
	maxTerminationMessage = 4096
	maxFallbackLines      = 80
	maxFallbackBytes      = 2048
)

func terminationMessage(st *runtimeapi.ContainerStatus, info criconfig.ContainerInfo) string {
	if info.TerminationMessagePath != "" {
		for _, m := range st.GetMounts() {
			if m.GetContainerPath() != info.TerminationMessagePath {
				continue
			}
			if b, err := readAtMost(m.GetHostPath(), maxTerminationMessage); err == nil && len(b) > 0 {
				return string(b)
			}
		}
	}
	if info.TerminationMessagePolicy == v1.TerminationMessageFallbackToLogsOnError && st.GetExitCode() != 0 && st.GetLogPath() != "" {
		if tail := logTail(st.GetLogPath()); tail != "" {
			return tail
		}
	}
	return st.GetMessage()
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// logTail returns the last lines of a CRI-format log file, message text
// only (the timestamp, stream and tag fields are cut).
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Enough of the file's end for 80 short lines.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxFallbackLines {
		lines = lines[len(lines)-maxFallbackLines:]
	}
	var out strings.Builder
	for _, l := range lines {
		// "2026-01-02T03:04:05.000000000Z stdout F text"
		if parts := strings.SplitN(l, " ", 4); len(parts) == 4 {
			out.WriteString(parts[3])
			if parts[2] == "F" {
				out.WriteByte('\n')
			}
		}
	}
	msg := out.String()
	if len(msg) > maxFallbackBytes {
		msg = msg[len(msg)-maxFallbackBytes:]
	}
	return msg
}

func unixNanoOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
