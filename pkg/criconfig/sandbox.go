package criconfig

import (
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// EventRecorder receives the Events the kubelet emits while it builds a
// config (DNS limits exceeded, no cluster DNS). client-go's
// record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{})
}

// SandboxOptions are the inputs of BuildSandboxConfig besides the pod.
type SandboxOptions struct {
	// Attempt is the sandbox's attempt number: 0 for the pod's first
	// sandbox, one more than the last one's for each new one.
	Attempt uint32
	// PodLogsDir is the root of the pods' log directories (the kubelet's
	// --pod-logs-dir, by default /var/log/pods).
	PodLogsDir string
	// CgroupParent is the pod's cgroup (its QoS-class parent included), in
	// the runtime's cgroup driver's syntax; empty leaves the choice to the
	// runtime.
	CgroupParent string
	// DNS configures the pod's resolv.conf.
	DNS DNSOptions
	// Node holds the node's facts; only CgroupV2 matters to a sandbox.
	Node NodeConfig
	// Recorder, if set, receives the Events the kubelet emits about the
	// pod's DNS configuration.
	Recorder EventRecorder
}

// sandboxOpt sets one concern of a sandbox config.
type sandboxOpt func(*runtimeapi.PodSandboxConfig) error

// BuildSandboxConfig returns the PodSandboxConfig the kubelet would send to
// RunPodSandbox for pod.
func BuildSandboxConfig(pod *v1.Pod, opts SandboxOptions) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{}},
	}
	for _, o := range []sandboxOpt{
		withSandboxMetadata(pod, opts.Attempt),
		withSandboxLabels(pod),
		// DNS first, as the kubelet, so the same error wins.
		withDNS(pod, opts.DNS, opts.Recorder),
		withSandboxHostname(pod, opts.DNS.ClusterDomain),
		withLogDirectory(pod, opts.PodLogsDir),
		withPortMappings(pod),
		withCgroupParent(opts.CgroupParent),
		withSandboxSecurityContext(pod),
		withSysctls(pod),
		withSandboxResources(pod, opts.Node.CgroupV2),
	} {
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func withSandboxMetadata(pod *v1.Pod, attempt uint32) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.Metadata = &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   attempt,
		}
		return nil
	}
}

func withSandboxLabels(pod *v1.Pod) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.Labels = SandboxLabels(pod)
		cfg.Annotations = SandboxAnnotations(pod)
		return nil
	}
}

func withSandboxHostname(pod *v1.Pod, clusterDomain string) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		h, err := sandboxHostname(pod, clusterDomain)
		cfg.Hostname = h
		return err
	}
}

func withLogDirectory(pod *v1.Pod, podLogsDir string) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.LogDirectory = PodLogsDirectory(podLogsDir, pod.Namespace, pod.Name, pod.UID)
		return nil
	}
}

func withCgroupParent(parent string) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.Linux.CgroupParent = parent
		return nil
	}
}

func withSysctls(pod *v1.Pod) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.Linux.Sysctls = podSysctls(pod)
		return nil
	}
}

// PodLogsDirectory returns the directory of a pod's logs,
// PODLOGSDIR/NAMESPACE_NAME_UID; '_' cannot occur in a name or namespace,
// so log collectors split it back.
func PodLogsDirectory(podLogsDir, namespace, name string, uid types.UID) string {
	return filepath.Join(podLogsDir, strings.Join([]string{namespace, name, string(uid)}, "_"))
}

// ContainerLogPath returns a container's log file relative to its pod's log
// directory, NAME/RESTARTCOUNT.log, as ContainerConfig.LogPath says it.
func ContainerLogPath(containerName string, restartCount int) string {
	return filepath.Join(containerName, strconv.Itoa(restartCount)+".log")
}

// podSysctls returns the pod's sysctls. The kubelet's default pod sysctls
// are behind an alpha feature gate that is off, so they are not added.
func podSysctls(pod *v1.Pod) map[string]string {
	s := map[string]string{}
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, c := range sc.Sysctls {
			s[c.Name] = c.Value
		}
	}
	return s
}
