package volume

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// machineAllocatable reads the machine's cpu, memory and ephemeral-storage
// (the file system of rootDir) for when the agent did not say what its node
// may allocate. The agent reserves nothing, so that is the capacity.
func machineAllocatable(rootDir string) (v1.ResourceList, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return nil, fmt.Errorf("read memory capacity: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(rootDir, &st); err != nil {
		return nil, fmt.Errorf("read ephemeral-storage capacity of %s: %w", rootDir, err)
	}
	return v1.ResourceList{
		v1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(int64(si.Totalram)*int64(si.Unit), resource.BinarySI),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI),
	}, nil
}

// podMemoryLimit returns the memory limit of the pod's cgroup, as the
// kubelet computes it: the pod-level limit if set, else the aggregate of its
// containers' limits (plus overhead) when every regular and init container
// declares one.
func podMemoryLimit(pod *v1.Pod) (resource.Quantity, bool) {
	declared := true
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Resources.Limits.Memory().IsZero() {
			declared = false
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Resources.Limits.Memory().IsZero() {
			declared = false
		}
	}
	if pod.Spec.Resources != nil && !pod.Spec.Resources.Limits.Memory().IsZero() {
		declared = true
	}
	if !declared {
		return resource.Quantity{}, false
	}
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	q, ok := limits[v1.ResourceMemory]
	return q, ok && !q.IsZero()
}

// tmpfsSize returns the size of a memory-backed emptyDir: the smallest of
// the node's allocatable memory, the pod's memory limit and the volume's
// sizeLimit, each considered only when set and positive. Zero means no
// size option (the kernel's default, half of RAM).
func tmpfsSize(nodeMemory *resource.Quantity, pod *v1.Pod, sizeLimit *resource.Quantity) int64 {
	var size *resource.Quantity
	consider := func(q *resource.Quantity) {
		if q == nil || q.Sign() <= 0 {
			return
		}
		if size == nil || q.Cmp(*size) < 0 {
			size = q
		}
	}
	consider(nodeMemory)
	if lim, ok := podMemoryLimit(pod); ok {
		consider(&lim)
	}
	consider(sizeLimit)
	if size == nil {
		return 0
	}
	return size.Value()
}
