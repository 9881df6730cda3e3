package criconfig

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CPU and OOM constants of the kubelet's container manager.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// quotaPeriod is the CFS period in microseconds (the kubelet's
	// --cpu-cfs-quota-period default, 100ms).
	quotaPeriod = 100000
	// minQuotaPeriod is the smallest quota the kernel accepts (1ms).
	minQuotaPeriod = 1000

	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000

	systemCriticalPriority = 2 * 1000000000
	systemNodeCritical     = "system-node-critical"
	mirrorPodAnnotation    = "kubernetes.io/config.mirror"
)

// Cgroup v2 files the kubelet sets through LinuxContainerResources.Unified.
const (
	cgroup2MemoryOOMGroup = "memory.oom.group"
	cgroup2MemoryHigh     = "memory.high"
	cgroup2MemorySwapMax  = "memory.swap.max"
)

// milliCPUToShares converts a CPU request to cgroup cpu.shares. Zero maps
// to the minimum, not to "unset", which the kernel would read as 1024: a
// pod that requests nothing must not get a full CPU's weight.
func milliCPUToShares(milliCPU int64) int64 {
	if milliCPU == 0 {
		return minShares
	}
	shares := milliCPU * sharesPerCPU / milliCPUToCPU
	return min(max(shares, minShares), maxShares)
}

// milliCPUToQuota converts a CPU limit to a CFS quota over period; zero
// means no limit.
func milliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*period/milliCPUToCPU, minQuotaPeriod)
}

// CapResources limits r to cpu and memory (nil: that one not), as a
// container limit of the same size does: a CFS quota over the kubelet's
// period, with its 1 ms minimum, and a memory limit.
func CapResources(r *runtimeapi.LinuxContainerResources, cpu, memory *resource.Quantity) {
	if cpu != nil {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = milliCPUToQuota(cpu.MilliValue(), quotaPeriod)
	}
	if memory != nil {
		r.MemoryLimitInBytes = memory.Value()
	}
}

// linuxResources computes cgroup settings from a CPU request (nil when
// none is set), a CPU limit and a memory limit (zero for none). On cgroup v2
// the kernel is asked to kill the whole container on OOM, the kubelet's
// default there (singleProcessOOMKill unset).
func linuxResources(cpuRequest, cpuLimit, memoryLimit *resource.Quantity, cgroupV2 bool) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuPeriod: quotaPeriod}
	// An unset request defaults to the limit, as the API server does for
	// new pods.
	if cpuRequest == nil {
		cpuRequest = cpuLimit
	}
	r.CpuShares = milliCPUToShares(cpuRequest.MilliValue())
	r.CpuQuota = milliCPUToQuota(cpuLimit.MilliValue(), quotaPeriod)
	r.MemoryLimitInBytes = memoryLimit.Value()
	if cgroupV2 {
		r.Unified = map[string]string{cgroup2MemoryOOMGroup: "1"}
	}
	return r
}

// containerResources returns a container's cgroup settings. Without a
// container-level limit, pod-level resources (when set) give the limit.
// Hugepage limits are left out: they need the host's page sizes.
func containerResources(pod *v1.Pod, c *v1.Container, node NodeConfig) *runtimeapi.LinuxContainerResources {
	podLevel := resourcehelper.IsPodLevelResourcesSet(pod)
	cpuLimit := c.Resources.Limits.Cpu()
	memoryLimit := c.Resources.Limits.Memory()
	if podLevel && cpuLimit.IsZero() {
		cpuLimit = pod.Spec.Resources.Limits.Cpu()
	}
	if podLevel && memoryLimit.IsZero() {
		memoryLimit = pod.Spec.Resources.Limits.Memory()
	}
	cpuRequest := cpuLimit
	if _, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		cpuRequest = c.Resources.Requests.Cpu()
	}
	r := linuxResources(cpuRequest, cpuLimit, memoryLimit, node.CgroupV2)
	r.OomScoreAdj = oomScoreAdj(pod, c, node.MemoryCapacity)

	// Swap: the kubelet's default behaviour is NoSwap, applied only where
	// the kernel accounts for swap.
	if node.SwapController {
		if node.CgroupV2 {
			r.Unified[cgroup2MemorySwapMax] = "0"
		} else {
			r.MemorySwapLimitInBytes = r.MemoryLimitInBytes
		}
	}
	if node.CgroupV2 {
		// Without MemoryQoS (alpha, off) the kubelet resets memory.high
		// explicitly, so a value left by an earlier setting is cleared.
		r.Unified[cgroup2MemoryHigh] = "max"
	}
	return r
}

func withSandboxResources(pod *v1.Pod, cgroupV2 bool) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.Linux.Resources, cfg.Linux.Overhead = sandboxResources(pod, cgroupV2)
		return nil
	}
}

// sandboxResources returns the pod's aggregate cgroup settings, which the
// runtime may apply to the sandbox, and the pod's overhead, treated as
// guaranteed (request equals limit).
func sandboxResources(pod *v1.Pod, cgroupV2 bool) (resources, overhead *runtimeapi.LinuxContainerResources) {
	opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
	req := resourcehelper.PodRequests(pod, opts)
	lim := resourcehelper.PodLimits(pod, opts)
	var cpuRequest *resource.Quantity
	if _, ok := req[v1.ResourceCPU]; ok {
		cpuRequest = req.Cpu()
	}
	resources = linuxResources(cpuRequest, lim.Cpu(), lim.Memory(), cgroupV2)
	overhead = &runtimeapi.LinuxContainerResources{}
	if pod.Spec.Overhead != nil {
		cpu := pod.Spec.Overhead.Cpu()
		overhead = linuxResources(cpu, cpu, pod.Spec.Overhead.Memory(), cgroupV2)
	}
	return resources, overhead
}

// oomScoreAdj ranks a container for the kernel's OOM killer by its pod's
// QoS class: guaranteed last, best-effort first, burstable in between by
// the share of the node's memory it requests. memoryCapacity zero (unknown)
// ranks every burstable container just above best-effort ones.
func oomScoreAdj(pod *v1.Pod, c *v1.Container, memoryCapacity int64) int64 {
	if isNodeCriticalPod(pod) {
		return guaranteedOOMScoreAdj
	}
	switch podQOS(pod) {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	score := func(memoryRequest int64) int64 {
		if memoryCapacity <= 0 {
			return besteffortOOMScoreAdj
		}
		return 1000 - 1000*memoryRequest/memoryCapacity
	}
	// Pod-level requests not given to any container are shared equally.
	var extra int64
	if resourcehelper.IsPodLevelRequestsSet(pod) {
		extra = remainingPodMemoryPerContainer(pod)
	}
	adj := score(c.Resources.Requests.Memory().Value() + extra)
	// A sidecar must not be killed before the containers it serves.
	if isSidecar(pod, c) && len(pod.Spec.Containers) > 0 {
		adj = min(adj, score(minRegularContainerMemory(pod)+extra))
	}
	// Keep burstable strictly between guaranteed and best-effort.
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}

func remainingPodMemoryPerContainer(pod *v1.Pod) int64 {
	podRequest := pod.Spec.Resources.Requests.Memory()
	if podRequest.IsZero() {
		return 0
	}
	containers := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	remaining := max(podRequest.Value()-containers.Memory().Value(), 0)
	return remaining / int64(len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
}

func minRegularContainerMemory(pod *v1.Pod) int64 {
	m := pod.Spec.Containers[0].Resources.Requests.Memory().Value()
	for i := 1; i < len(pod.Spec.Containers); i++ {
		m = min(m, pod.Spec.Containers[i].Resources.Requests.Memory().Value())
	}
	return m
}

// isSidecar reports whether c is a restartable init container of pod.
func isSidecar(pod *v1.Pod, c *v1.Container) bool {
	if c.RestartPolicy == nil || *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return true
		}
	}
	return false
}

// isNodeCriticalPod reports whether pod is system-node-critical. Static
// pods, critical in the kubelet, never reach the agent except as mirror
// pods.
func isNodeCriticalPod(pod *v1.Pod) bool {
	if pod.Spec.PriorityClassName != systemNodeCritical {
		return false
	}
	if _, mirror := pod.Annotations[mirrorPodAnnotation]; mirror {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= systemCriticalPriority
}

// podQOS returns the pod's QoS class: the API server's, else computed the
// same way from requests and limits of CPU and memory.
func podQOS(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		return requirementsQOS(pod.Spec.Resources)
	}
	var qos v1.PodQOSClass
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			switch q := requirementsQOS(&list[i].Resources); {
			case q == v1.PodQOSBurstable:
				return q
			case qos == "":
				qos = q
			case qos != q:
				return v1.PodQOSBurstable
			}
		}
	}
	if qos == "" {
		return v1.PodQOSBestEffort
	}
	return qos
}

// requirementsQOS classifies one set of requirements: best-effort when no
// CPU or memory is requested or limited, guaranteed when both are and
// requests equal limits, burstable otherwise.
func requirementsQOS(r *v1.ResourceRequirements) v1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return v1.PodQOSBestEffort
	}
	var qos v1.PodQOSClass
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		req, lim := r.Requests[name], r.Limits[name]
		var q v1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return v1.PodQOSBurstable
		case req.IsZero():
			q = v1.PodQOSBestEffort
		default:
			q = v1.PodQOSGuaranteed
		}
		if qos == "" {
			qos = q
		} else if qos != q {
			return v1.PodQOSBurstable
		}
	}
	return qos
}
