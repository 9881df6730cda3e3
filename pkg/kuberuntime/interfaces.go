package kuberuntime

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/admission"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// The interfaces below are everything the sync loop needs from the world.
// An embedding node agent provides them; the agent's own wiring is in
// cmd/ephemeral-agent.

// Runtime is the part of the CRI runtime service the sync loop calls
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error)
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, containerID string) error
	StopContainer(ctx context.Context, containerID string, timeout int64) error
	RemoveContainer(ctx context.Context, containerID string) error
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout []byte, stderr []byte, err error)
}

// PodSource answers which pods are bound to this node, by UID. A pod that
// is not found no longer exists in the API: its runtime objects are removed.
type PodSource interface {
	GetPodByUID(uid types.UID) (*v1.Pod, bool)
}

// Images makes sure a container's image is present and returns the image
// reference to create the container with. Its errors carry the kubelet's
// Waiting reasons (ErrImagePull, ImagePullBackOff, ...); see ErrorReason.
type Images interface {
	EnsureImage(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, image string, policy v1.PullPolicy, pullSecrets []v1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	// ImageUser returns the user the image runs as (uid or name), for
	// runAsNonRoot checks.
	ImageUser(ctx context.Context, imageRef string) (uid *int64, username string, err error)
	// ForgetPod says the pod is being deleted or is gone: a pull only it
	// waits for may stop.
	ForgetPod(uid types.UID)
}

// Volumes prepares a pod's volumes and maps a container's volumeMounts to
// CRI mounts.
type Volumes interface {
	SetUp(ctx context.Context, pod *v1.Pod) (Mounter, error)
	TearDown(ctx context.Context, podUID types.UID) error
}

// Mounter gives a container the CRI mounts for its volumeMounts. env is
// the container's resolved environment (valueFrom variables and service
// variables included), with which a subPathExpr is expanded, as the
// kubelet expands it; volume.PodVolumes satisfies it.
type Mounter interface {
	MountsWithEnv(c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error)
}

// Secrets fetches what containers reference: pull secrets, env sources.
type Secrets interface {
	criconfig.EnvSources
}

// Services gives containers the service environment variables the kubelet
// computes from the cluster's Services (KUBERNETES_SERVICE_HOST, ... and,
// with enableServiceLinks, those of the pod's namespace); servicenv.Env
// satisfies it. They are read when a container is created and fixed for
// its life. An error fails that container's start with
// CreateContainerConfigError, to be retried.
type Services interface {
	ServiceEnv(pod *v1.Pod) (map[string]string, error)
}

// RuntimeClasses resolves a pod's spec.runtimeClassName to the CRI runtime
// handler of its sandbox (runtimeclass.Resolver satisfies it): "" for the
// runtime's default. An error (a RuntimeClass that does not exist) fails
// the sandbox with FailedCreatePodSandBox, to be retried.
type RuntimeClasses interface {
	LookupRuntimeHandler(runtimeClassName *string) (string, error)
}

// StatusSink receives, after every sync, what the pod's status must say.
// It is called with the pod's observed state and the Waiting reasons of
// containers that failed to start or wait for backoff.
type StatusSink interface {
	SetPodStatus(pod *v1.Pod, state *podstate.PodState, waiting map[podstate.ContainerKey]podstate.Waiting)
	// DeletePod removes a pod whose deletion was requested once nothing of
	// it runs any more, as the kubelet does (grace period 0, UID
	// precondition).
	DeletePod(ctx context.Context, pod *v1.Pod) error
	// ForgetPod drops what the sink keeps for a pod that is gone.
	ForgetPod(uid types.UID)
}

// Recorder emits Events (client-go's record.EventRecorder satisfies it).
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{})
}

// Prober runs the liveness, readiness and startup probes of the pods'
// running containers (pkg/prober's Manager satisfies it).
type Prober interface {
	// UpdatePod probes the pod's running containers of state, stops
	// probing those that no longer run, and returns what the probes say of
	// each running regular container and sidecar, by container ID.
	UpdatePod(pod *v1.Pod, state *podstate.PodState) map[string]podstate.Probed
	// ForgetPod stops every probe of a pod that is gone.
	ForgetPod(uid types.UID)
}

// Admission decides, once per pod, whether this node runs it
// (admission.Gate satisfies it). A rejected pod is never run: no volumes,
// no sandbox, no container, ephemeral ones included.
type Admission interface {
	// Admit returns the decision on pod, the same on every call. first is
	// true the one time a rejection is returned, for its Event.
	Admit(ctx context.Context, pod *v1.Pod) (r admission.Result, first bool)
	// Forget drops the decision on a pod that is gone.
	Forget(uid types.UID)
}

// PodRejecter is implemented by a StatusSink that reports pods the node
// rejected at admission (status.Manager does): phase Failed with the
// rejection's reason and message, final.
type PodRejecter interface {
	RejectPod(pod *v1.Pod, reason, message string)
}

// PodCgroups gives each pod its cgroup below its QoS tier (pkg/cm's
// Manager satisfies it).
type PodCgroups interface {
	// EnsurePod creates or updates the pod's cgroup and returns its name
	// in the runtime's cgroup driver syntax, the sandbox's cgroup_parent.
	EnsurePod(ctx context.Context, pod *v1.Pod) (string, error)
	// RemovePod removes the cgroup of a pod whose sandboxes are gone.
	RemovePod(ctx context.Context, uid types.UID) error
}

// DebugPolicy decides whether a debug (ephemeral) container may run and
// with which caps and time limits (debugpolicy.Decide with the namespace's
// labels). It is asked once, before the container is first created. An
// error (the namespace's labels unknown) fails that start with
// CreateContainerConfigError, to be retried.
type DebugPolicy interface {
	Decide(ctx context.Context, pod *v1.Pod, ec *v1.EphemeralContainer) (debugpolicy.Decision, error)
}

// Sessions tells when a container last had an exec or attach session
// (streaming.Activity satisfies it), for debug containers' idle timeouts.
type Sessions interface {
	// LastActivity reports whether a session to the container is open,
	// else when the last one ended (never before the tracker began).
	LastActivity(containerID string) (last time.Time, active bool)
}

// ContainerPids caps a running container's processes. CRI has no field for
// it, so the caller writes the container's cgroup once it started.
type ContainerPids interface {
	LimitContainerPids(ctx context.Context, containerID string, limit int64) error
}

// DebugAudit records every debug container created or refused, one line
// each (streaming.Auditor satisfies it).
type DebugAudit interface {
	Container(ctx context.Context, e *debugapi.ContainerAudit)
}

// TargetNamespaces tells whether the runtime puts a container created with
// PID namespace mode TARGET in its target container's PID namespace
// (targetcheck.Preflight satisfies it). TargetSharing returns an error only
// when that was proven false; its text says how.
type TargetNamespaces interface {
	TargetSharing() error
}
