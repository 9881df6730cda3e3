package criconfig

import (
	"context"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// NodeConfig holds what the builders need to know about the node and the
// agent's settings; it is the same for every pod. The zero value describes
// a cgroup v1 node without swap accounting, of unknown memory and
// allocatable.
type NodeConfig struct {
	// CgroupV2 is true on a unified cgroup v2 hierarchy, where the kubelet
	// sets memory.oom.group, memory.high and memory.swap.max.
	CgroupV2 bool
	// SwapController is true when the kernel accounts for swap
	// (memory.memsw.* on v1, memory.swap.max on v2); the kubelet then
	// denies containers swap.
	SwapController bool
	// MemoryCapacity is the node's memory in bytes, which ranks burstable
	// containers for the OOM killer.
	MemoryCapacity int64
	// Allocatable is the node's allocatable resources, which the downward
	// API reports for a limit the container does not set.
	Allocatable v1.ResourceList
	// SeccompProfileRoot is where Localhost seccomp profiles live (the
	// kubelet's ROOTDIR/seccomp).
	SeccompProfileRoot string
}

// ContainerOptions are the inputs of BuildContainerConfig besides the pod
// and the container, gathered by the caller from CRI and the node.
type ContainerOptions struct {
	// Type is which list of the pod spec the container comes from.
	Type ContainerType
	// RestartCount is how many times the container was started before;
	// it is the config's attempt and names its log file.
	RestartCount int
	// ImageRef is the image ID the runtime resolved the container's image
	// to; the config runs exactly that image.
	ImageRef string
	// ImageUID and ImageUsername are the image's user, as CRI ImageStatus
	// reports it; neither set means root. runAsNonRoot is checked against
	// them, and they become the container's user when the pod and
	// container set no runAsUser.
	ImageUID      *int64
	ImageUsername string
	// Mounts are the container's volume mounts, computed by the volume
	// code; the termination-message mount is appended to them.
	Mounts []*runtimeapi.Mount
	// TerminationMessageHostPath is the host file, created by the caller,
	// mounted at the container's terminationMessagePath. Empty mounts
	// nothing, as when the kubelet fails to create it.
	TerminationMessageHostPath string
	// HostsFile is the host file with the pod's managed hosts
	// (HostsFile), mounted at /etc/hosts unless the container mounts a
	// volume there. Empty mounts nothing (ShouldMountHostsFile was false).
	HostsFile string
	// PodIP, PodIPs, HostIP, HostIPs and NodeName are what the downward
	// API reports. PodIPs come primary family first; NodeName is used only
	// when the pod has no spec.nodeName.
	PodIP    string
	PodIPs   []string
	HostIP   string
	HostIPs  []string
	NodeName string
	// TargetContainerID is the runtime ID of the container whose PID
	// namespace an ephemeral container joins (its targetContainerName).
	TargetContainerID string
	// Sources fetches ConfigMaps and Secrets the env refers to; nil fails
	// any such reference.
	Sources EnvSources
	// ServiceEnv are the Docker-links style service variables
	// (KUBERNETES_SERVICE_HOST...) the kubelet computes from Services; they
	// are appended after the container's own and may be referenced by it.
	ServiceEnv map[string]string
	// Node holds the node's facts and settings.
	Node NodeConfig
	// Env is the container's environment as ResolveEnv returned it for
	// these options. Set, it is used as is, so that the caller, which
	// needed it before (to expand subPathExpr), does not fetch the
	// ConfigMaps and Secrets it refers to a second time; nil resolves it.
	Env *Env
}

// containerOpt sets one concern of a container config.
type containerOpt func(*runtimeapi.ContainerConfig) error

// BuildContainerConfig returns the ContainerConfig the kubelet would send
// to CreateContainer for container c of pod. An ephemeral container is
// passed converted, v1.Container(ec.EphemeralContainerCommon), with
// opts.Type ContainerTypeEphemeral and, if it has a target, its ID in
// opts.TargetContainerID.
//
// Every error matches ErrCreateContainerConfig and has the kubelet's
// message, to be shown as the container's Waiting message.
func BuildContainerConfig(ctx context.Context, pod *v1.Pod, c *v1.Container, opts ContainerOptions) (*runtimeapi.ContainerConfig, error) {
	logger := klog.FromContext(ctx)
	// The kubelet resolves the environment first, so a missing ConfigMap
	// is reported before a security-policy violation.
	env := opts.Env
	if env == nil {
		var err error
		if env, err = ResolveEnv(ctx, pod, c, opts); err != nil {
			return nil, err
		}
	}
	uid, username := imageUser(opts.ImageUID, opts.ImageUsername)
	if err := verifyRunAsNonRoot(pod, c, uid, username); err != nil {
		return nil, configError{err}
	}

	cfg := &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{}}
	for _, o := range []containerOpt{
		withContainerMetadata(pod, c, opts.Type, opts.RestartCount),
		withImage(c, opts.ImageRef),
		withProcess(c, env.list),
		withMounts(c, opts.Mounts, opts.HostsFile, opts.TerminationMessageHostPath),
		withLinuxResources(pod, c, opts.Node),
		withContainerSecurityContext(pod, c, uid, username, opts.TargetContainerID, opts.Node),
	} {
		if err := o(cfg); err != nil {
			return nil, configError{err}
		}
	}
	logger.V(4).Info("Built container config", "pod", klog.KObj(pod), "containerName", c.Name, "containerType", opts.Type, "restartCount", opts.RestartCount)
	return cfg, nil
}

func withContainerMetadata(pod *v1.Pod, c *v1.Container, typ ContainerType, restartCount int) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		cfg.Metadata = &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(restartCount)}
		cfg.Labels = ContainerLabels(pod, c.Name)
		cfg.Annotations = ContainerAnnotations(pod, c, typ, restartCount)
		cfg.LogPath = ContainerLogPath(c.Name, restartCount)
		return nil
	}
}

// withImage runs the image ID the runtime resolved, so a tag moved since
// the pull cannot change what runs; the name the user wrote is kept for
// status.
func withImage(c *v1.Container, imageRef string) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		cfg.Image = &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image}
		return nil
	}
}

func withProcess(c *v1.Container, env *envList) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		cfg.Command, cfg.Args = expandCommand(c, env)
		cfg.WorkingDir = c.WorkingDir
		cfg.Envs = env.keyValues()
		cfg.Stdin = c.Stdin
		cfg.StdinOnce = c.StdinOnce
		cfg.Tty = c.TTY
		return nil
	}
}

// withMounts adds the managed hosts file and the termination-message file
// to the volume mounts, in the kubelet's order. The termination-message
// file is per container instance (the caller creates a new one for each
// restart), so a message left by a previous run is not reported again.
func withMounts(c *v1.Container, mounts []*runtimeapi.Mount, hostsFile, terminationMessageHostPath string) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		cfg.Mounts = append([]*runtimeapi.Mount{}, mounts...)
		if hostsFile != "" && !mountsEtcHosts(c) {
			cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{
				HostPath:       hostsFile,
				ContainerPath:  EtcHostsPath,
				SelinuxRelabel: true,
			})
		}
		if terminationMessageHostPath != "" && c.TerminationMessagePath != "" {
			cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{
				HostPath:      terminationMessageHostPath,
				ContainerPath: c.TerminationMessagePath,
			})
		}
		return nil
	}
}

func withLinuxResources(pod *v1.Pod, c *v1.Container, node NodeConfig) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		cfg.Linux.Resources = containerResources(pod, c, node)
		return nil
	}
}

func withContainerSecurityContext(pod *v1.Pod, c *v1.Container, uid *int64, username, targetID string, node NodeConfig) containerOpt {
	return func(cfg *runtimeapi.ContainerConfig) error {
		sc, err := containerSecurityContext(pod, c, uid, username, targetID, node)
		cfg.Linux.SecurityContext = sc
		return err
	}
}
