// Package targetcheck is the agent's TARGET preflight: it proves once, with
// two throwaway containers, whether the CRI runtime puts a container created
// with PID namespace mode TARGET in its target container's PID namespace, as
// `kubectl debug --target` expects. A runtime that accepts the mode and
// ignores it gives the debugger a process namespace of its own, and the
// debugging user sees none of the target's processes without being told.
//
// Run carries the check out; Preflight keeps its result for the node
// condition, the metric and the sync loop (see TargetSharing). It is not a
// general runtime conformance test: only this one namespace rule is checked.
package targetcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// Runtime is the part of the CRI runtime service the check needs
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error)
	RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error)
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, containerID string) error
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
}

// ImageLister lists the runtime's images (k8s.io/cri-client's
// ImageManagerService satisfies it); a pinned image is the runtime's pause
// image when its Status does not name one.
type ImageLister interface {
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
}

// Names the check's runtime objects carry. The label lets a later run find
// and remove what an agent killed during a check left behind; no pod UID
// label is set, so the sync loop never takes them for a pod's.
const (
	SandboxName      = "ephemeral-agent-target-preflight"
	SandboxNamespace = "ephemeral-agent"
	Label            = "ephemeral-agent.io/preflight"
	labelValue       = "target"
)

// DefaultTimeout bounds a whole check when Config.Timeout is 0: a sandbox
// and two pause containers take about a second on a healthy runtime.
const DefaultTimeout = 30 * time.Second

// cleanupTimeout bounds the removal of the check's sandbox, which runs even
// when the check's own time is up.
const cleanupTimeout = 10 * time.Second

// Outcome is what a check found.
type Outcome string

// The outcomes, also the values of the metric's result label.
const (
	// Shared: the TARGET container ran in its target's PID namespace.
	Shared Outcome = "shared"
	// Mismatch: it ran in another PID namespace; the runtime does not
	// honour TARGET.
	Mismatch Outcome = "mismatch"
	// Error: the check could not be carried out (runtime error, no pause
	// image, no process IDs reported); nothing is known.
	Error Outcome = "error"
)

// Outcomes lists every Outcome, for the metric.
var Outcomes = []Outcome{Shared, Mismatch, Error}

// Reasons of a Result, CamelCase for the node condition.
const (
	ReasonShared         = "TargetNamespaceShared"
	ReasonMismatch       = "TargetNamespaceNotShared"
	ReasonPreflightError = "TargetPreflightFailed"
)

// Result is the outcome of one check.
type Result struct {
	Outcome Outcome
	// Reason and Message say why, for the node condition.
	Reason  string
	Message string
	// Time is when the check ended.
	Time time.Time
}

// OK reports whether the runtime was seen to share the target's PID
// namespace.
func (r Result) OK() bool { return r.Outcome == Shared }

// Config tunes a check; the zero value works with a containerd runtime.
type Config struct {
	// Image runs both containers: it must run a process that stays up
	// without arguments, such as the pause image. Empty: the runtime's
	// pause image (see PauseImage).
	Image string
	// Images finds a pinned image when the runtime's Status names no
	// pause image. It may be nil.
	Images ImageLister
	// ProcRoot is where the host's /proc is mounted ("" for /proc): the
	// containers' PID namespaces are read there.
	ProcRoot string
	// Timeout bounds the check (DefaultTimeout when 0).
	Timeout time.Duration
	// Now gives the result's time (time.Now when nil).
	Now func() time.Time
}

// Run checks once, bounded by cfg.Timeout, whether rt runs a container with
// PID namespace mode TARGET in its target's PID namespace: it starts a
// sandbox (host network, so no CNI is needed) with a target container and
// a second container targeting it, both running cfg.Image, reads the PID
// namespace of both processes from the host's /proc, and removes the
// sandbox again, whatever happened. Leftovers of an earlier, interrupted
// check are removed first.
func Run(ctx context.Context, rt Runtime, cfg Config) Result {
	logger := klog.FromContext(ctx)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	outcome, detail, err := check(ctx, rt, cfg)
	r := Result{Outcome: outcome, Message: detail, Time: now()}
	switch outcome {
	case Shared:
		r.Reason = ReasonShared
		r.Message = "the container runtime runs a container with PID namespace mode TARGET in its target container's PID namespace (" + detail + ")"
	case Mismatch:
		r.Reason = ReasonMismatch
		r.Message = "the container runtime does not run a container with PID namespace mode TARGET in its target container's PID namespace (" + detail + "); debug containers with a target container are not started"
	default:
		r.Outcome, r.Reason = Error, ReasonPreflightError
		r.Message = fmt.Sprintf("the TARGET preflight could not run, debug containers with a target container start unchecked: %v", err)
	}
	logger.Info("TARGET preflight done", "result", r.Outcome, "message", r.Message)
	return r
}

// check runs the containers and compares their namespaces; it returns the
// outcome with what was seen, or Error with why nothing could be seen.
func check(ctx context.Context, rt Runtime, cfg Config) (Outcome, string, error) {
	removeLeftovers(ctx, rt)
	image := cfg.Image
	if image == "" {
		var err error
		if image, err = PauseImage(ctx, rt, cfg.Images); err != nil {
			return Error, "", err
		}
	}
	labels := map[string]string{Label: labelValue}
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      SandboxName,
			Namespace: SandboxNamespace,
			// A UID of its own per run: a sandbox an earlier run could
			// not remove never collides with this one.
			Uid: SandboxName + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		},
		Labels: labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
	// Removal must not share the check's deadline: a check that timed out
	// still leaves nothing behind.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	}
	sandboxID, err := rt.RunPodSandbox(ctx, sandboxConfig, "")
	if err != nil {
		// A call that timed out may still have made the sandbox.
		cctx, cancel := cleanupCtx()
		defer cancel()
		removeLeftovers(cctx, rt)
		return Error, "", fmt.Errorf("run sandbox: %w", err)
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		removeSandbox(cctx, rt, sandboxID)
	}()

	container := func(name string, ns *runtimeapi.NamespaceOption) (string, int, error) {
		id, err := rt.CreateContainer(ctx, sandboxID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Labels:   labels,
			Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns}},
		}, sandboxConfig)
		if err != nil {
			return "", 0, fmt.Errorf("create container %s: %w", name, err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			return "", 0, fmt.Errorf("start container %s: %w", name, err)
		}
		pid, err := containerPID(ctx, rt, id)
		if err != nil {
			return "", 0, fmt.Errorf("container %s: %w", name, err)
		}
		return id, pid, nil
	}
	// The target has a PID namespace of its own, as a container of a pod
	// that does not share one; the debugger asks for the target's, as the
	// sync loop builds an ephemeral container with targetContainerName.
	targetID, targetPID, err := container("target", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER})
	if err != nil {
		return Error, "", err
	}
	_, debugPID, err := container("debugger", &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_TARGET, TargetId: targetID,
	})
	if err != nil {
		return Error, "", err
	}
	return compare(cfg.ProcRoot, targetPID, debugPID)
}

// compare reads the PID namespaces of the target's and the debugger's
// processes (and the agent's own) under procRoot.
func compare(procRoot string, targetPID, debugPID int) (Outcome, string, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	ns := func(who string) (string, error) {
		link, err := os.Readlink(filepath.Join(procRoot, who, "ns", "pid"))
		if err != nil {
			return "", fmt.Errorf("read PID namespace: %w", err)
		}
		return link, nil
	}
	target, err := ns(strconv.Itoa(targetPID))
	if err != nil {
		return Error, "", err
	}
	debug, err := ns(strconv.Itoa(debugPID))
	if err != nil {
		return Error, "", err
	}
	// A target in the host's namespace proves nothing: every container
	// would "share" it. The agent runs in the host's namespace, as the
	// kubelet does.
	if own, err := ns("self"); err == nil && own == target {
		return Error, "", fmt.Errorf("the target container runs in the host's PID namespace %s, not in one of its own", target)
	}
	detail := fmt.Sprintf("target process %d in %s, debugger process %d in %s", targetPID, target, debugPID, debug)
	if target != debug {
		return Mismatch, detail, nil
	}
	return Shared, detail, nil
}

// containerPID returns the host PID of a running container's process, as
// the runtime's verbose ContainerStatus reports it (containerd: "pid" in
// the "info" JSON).
func containerPID(ctx context.Context, rt Runtime, id string) (int, error) {
	resp, err := rt.ContainerStatus(ctx, id, true)
	if err != nil {
		return 0, fmt.Errorf("container status: %w", err)
	}
	if s := resp.GetStatus().GetState(); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return 0, fmt.Errorf("container is %s, not running", s)
	}
	return criconfig.VerbosePID(resp.GetInfo())
}

// removeLeftovers removes the sandboxes earlier checks left (an agent
// killed during one); their containers go with them.
func removeLeftovers(ctx context.Context, rt Runtime) {
	old, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{Label: labelValue}})
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Unable to list the sandboxes of earlier TARGET preflights", "err", err)
		return
	}
	for _, sb := range old {
		klog.FromContext(ctx).Info("Removing the sandbox of an earlier TARGET preflight", "sandboxID", sb.GetId())
		removeSandbox(ctx, rt, sb.GetId())
	}
}

// removeSandbox stops and removes a sandbox of the check; the runtime stops
// and removes its containers with it. Failures are logged: the next
// agent start removes what is left.
func removeSandbox(ctx context.Context, rt Runtime, id string) {
	logger := klog.FromContext(ctx)
	if err := rt.StopPodSandbox(ctx, id); err != nil {
		logger.Error(err, "Failed to stop the TARGET preflight sandbox", "sandboxID", id)
	}
	if err := rt.RemovePodSandbox(ctx, id); err != nil {
		logger.Error(err, "Failed to remove the TARGET preflight sandbox", "sandboxID", id)
	}
}

// PauseImage returns the runtime's pause (sandbox) image: the one its
// verbose Status names in its config (containerd 1.x "sandboxImage",
// 2.x "pinnedImages.sandbox"), else a pinned image images lists. The
// runtime pulls it for every sandbox, so it is there once one runs.
func PauseImage(ctx context.Context, rt Runtime, images ImageLister) (string, error) {
	resp, err := rt.Status(ctx, true)
	if err != nil {
		return "", fmt.Errorf("runtime status: %w", err)
	}
	if img := pauseImageFromConfig(resp.GetInfo()["config"]); img != "" {
		return img, nil
	}
	if images != nil {
		list, err := images.ListImages(ctx, nil)
		if err != nil {
			return "", fmt.Errorf("list images: %w", err)
		}
		var pinned []string
		for _, img := range list {
			if img.GetPinned() && len(img.GetRepoTags()) > 0 {
				pinned = append(pinned, img.GetRepoTags()[0])
			}
		}
		for _, tag := range pinned {
			if strings.Contains(tag, "pause") {
				return tag, nil
			}
		}
		if len(pinned) > 0 {
			return pinned[0], nil
		}
	}
	return "", errors.New("the runtime names no pause image (no sandboxImage in its verbose status, no pinned image)")
}

// pauseImageFromConfig finds the sandbox image in the runtime config JSON a
// verbose Status carries.
func pauseImageFromConfig(raw string) string {
	if raw == "" {
		return ""
	}
	var cfg struct {
		SandboxImage string            `json:"sandboxImage"`
		PinnedImages map[string]string `json:"pinnedImages"`
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return ""
	}
	if cfg.SandboxImage != "" {
		return cfg.SandboxImage
	}
	return cfg.PinnedImages["sandbox"]
}
