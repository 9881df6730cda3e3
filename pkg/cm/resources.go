package cm

import (
	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// CPU constants of the kubelet's container manager.
const (
	// MinShares is the smallest cpu.shares the kernel accepts; the
	// besteffort tier and pods that request no CPU get it.
	MinShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// QuotaPeriod is the CFS period in microseconds (the kubelet's
	// --cpu-cfs-quota-period default, 100ms).
	QuotaPeriod = 100000
	// minQuotaPeriod is the smallest quota the kernel accepts (1ms).
	minQuotaPeriod = 1000
)

// ResourceConfig is what is written to a cgroup. A nil field leaves the
// cgroup's value as it is.
type ResourceConfig struct {
	// CPUShares is cpu.shares (cgroup v1); on v2 it becomes cpu.weight.
	CPUShares *uint64
	// CPUQuota and CPUPeriod are the CFS bandwidth limit, in µs; a quota
	// of -1 is no limit.
	CPUQuota  *int64
	CPUPeriod *uint64
	// Memory is the memory limit in bytes.
	Memory *int64
	// PidsLimit is the most processes the cgroup may hold.
	PidsLimit *int64
}

// MilliCPUToShares converts a CPU request to cpu.shares. Zero maps to the
// minimum: a pod that requests nothing must not get a full CPU's weight.
func MilliCPUToShares(milliCPU int64) uint64 {
	if milliCPU == 0 {
		return MinShares
	}
	return uint64(min(max(milliCPU*sharesPerCPU/milliCPUToCPU, MinShares), maxShares))
}

// milliCPUToQuota converts a CPU limit to a CFS quota over period; zero
// means no limit (-1).
func milliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return -1
	}
	return max(milliCPU*period/milliCPUToCPU, minQuotaPeriod)
}

// PodResourceConfig is the pod cgroup's configuration, as the kubelet's
// ResourceConfigForPod (CFS quota enforced, the default period): cpu.shares
// from the pod's CPU requests; for a Guaranteed pod, and for a Burstable
// one whose every container has that limit (or whose pod-level resources
// set it), the CPU quota and memory limit from the sum of the limits; pod
// overhead counted in both; pod-level resources (spec.resources) taking
// precedence over the containers'. A BestEffort pod gets only the minimum
// shares. pidsLimit, when positive, is --pod-max-pids.
func PodResourceConfig(pod *v1.Pod, qos v1.PodQOSClass, pidsLimit int64) ResourceConfig {
	var rc ResourceConfig
	if pidsLimit > 0 {
		rc.PidsLimit = &pidsLimit
	}
	if qos == v1.PodQOSBestEffort {
		shares := uint64(MinShares)
		rc.CPUShares = &shares
		return rc
	}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	cpuDeclared, memoryDeclared := containerLimitsDeclared(pod)
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		cpuDeclared = cpuDeclared || !pod.Spec.Resources.Limits.Cpu().IsZero()
		memoryDeclared = memoryDeclared || !pod.Spec.Resources.Limits.Memory().IsZero()
	}

	shares := MilliCPUToShares(reqs.Cpu().MilliValue())
	quota := milliCPUToQuota(limits.Cpu().MilliValue(), QuotaPeriod)
	period := uint64(QuotaPeriod)
	memory := limits.Memory().Value()
	rc.CPUShares = &shares
	if qos == v1.PodQOSGuaranteed || cpuDeclared {
		rc.CPUQuota, rc.CPUPeriod = &quota, &period
	}
	if qos == v1.PodQOSGuaranteed || memoryDeclared {
		rc.Memory = &memory
	}
	return rc
}

// containerLimitsDeclared tells whether every container and init
// container of pod has a CPU limit, and a memory limit: only then does the
// sum of the limits bound the pod.
func containerLimitsDeclared(pod *v1.Pod) (cpu, memory bool) {
	cpu, memory = true, true
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Resources.Limits.Cpu().IsZero() {
				cpu = false
			}
			if list[i].Resources.Limits.Memory().IsZero() {
				memory = false
			}
		}
	}
	return cpu, memory
}

// BestEffortConfig is the besteffort tier's configuration: the minimum
// shares, so best-effort pods get CPU only when nobody else wants it.
func BestEffortConfig() ResourceConfig {
	shares := uint64(MinShares)
	return ResourceConfig{CPUShares: &shares}
}

// BurstableConfig is the burstable tier's configuration, as the kubelet's
// QoS manager computes it: cpu.shares from the sum of the CPU requests of
// the active Burstable pods among pods (qos tells each pod's class).
func BurstableConfig(pods []*v1.Pod, qos func(*v1.Pod) v1.PodQOSClass) ResourceConfig {
	var milliCPU int64
	for _, pod := range pods {
		if qos(pod) != v1.PodQOSBurstable {
			continue
		}
		reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		milliCPU += reqs.Cpu().MilliValue()
	}
	shares := MilliCPUToShares(milliCPU)
	return ResourceConfig{CPUShares: &shares}
}

// KubepodsConfig is the configuration of the kubepods cgroup, the
// kubelet's without node allocatable enforcement: the node's CPU capacity
// as shares (the default 1024 would starve pods against the system's
// cgroups), its memory, and its pids when capacity counts them.
func KubepodsConfig(capacity v1.ResourceList) ResourceConfig {
	var rc ResourceConfig
	if cpu, ok := capacity[v1.ResourceCPU]; ok {
		shares := MilliCPUToShares(cpu.MilliValue())
		rc.CPUShares = &shares
	}
	if mem, ok := capacity[v1.ResourceMemory]; ok && mem.Value() > 0 {
		m := mem.Value()
		rc.Memory = &m
	}
	if pids, ok := capacity["pid"]; ok && pids.Value() > 0 {
		p := pids.Value()
		rc.PidsLimit = &p
	}
	return rc
}

// ActivePod tells whether pod counts for the QoS tiers: not finished.
func ActivePod(pod *v1.Pod) bool {
	return pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}
