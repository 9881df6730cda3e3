package criconfig

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCPUConversions(t *testing.T) {
	for _, tc := range []struct{ milli, shares, quota int64 }{
		{0, 2, 0},
		{1, 2, 1000},   // below the minimum shares and quota
		{5, 5, 1000},   // quota floor is 1ms
		{10, 10, 1000}, // 10m is exactly 1ms
		{100, 102, 10000},
		{250, 256, 25000},
		{1000, 1024, 100000},
		{1500, 1536, 150000},
		{300000, 262144, 30000000}, // shares capped
	} {
		if got := milliCPUToShares(tc.milli); got != tc.shares {
			t.Errorf("milliCPUToShares(%d) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := milliCPUToQuota(tc.milli, quotaPeriod); got != tc.quota {
			t.Errorf("milliCPUToQuota(%d) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
}

func TestContainerResources(t *testing.T) {
	res := func(req, lim v1.ResourceList) v1.ResourceRequirements {
		return v1.ResourceRequirements{Requests: req, Limits: lim}
	}
	for _, tc := range []struct {
		name   string
		c      v1.ResourceRequirements
		podRes *v1.ResourceRequirements
		node   NodeConfig
		want   *runtimeapi.LinuxContainerResources
	}{
		{"nothing", v1.ResourceRequirements{}, nil, NodeConfig{},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, OomScoreAdj: 1000}},
		{"request and limits", res(v1.ResourceList{v1.ResourceCPU: q("250m"), v1.ResourceMemory: q("64Mi")}, v1.ResourceList{v1.ResourceCPU: q("500m"), v1.ResourceMemory: q("128Mi")}), nil, NodeConfig{},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 256, CpuQuota: 50000, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 999}},
		{"request defaults to limit", res(nil, v1.ResourceList{v1.ResourceCPU: q("2")}), nil, NodeConfig{},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2048, CpuQuota: 200000, OomScoreAdj: 999}},
		{"explicit zero request is kept", res(v1.ResourceList{v1.ResourceCPU: q("0")}, v1.ResourceList{v1.ResourceCPU: q("2")}), nil, NodeConfig{},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, CpuQuota: 200000, OomScoreAdj: 999}},
		{"pod-level limits fill unset container limits", res(v1.ResourceList{v1.ResourceCPU: q("100m")}, nil),
			&v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("1Gi")}}, NodeConfig{},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 102, CpuQuota: 100000, MemoryLimitInBytes: 1 << 30, OomScoreAdj: 999}},
		{"cgroup v2 with swap accounting", res(nil, v1.ResourceList{v1.ResourceMemory: q("128Mi")}), nil, NodeConfig{CgroupV2: true, SwapController: true},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 999,
				Unified: map[string]string{"memory.oom.group": "1", "memory.high": "max", "memory.swap.max": "0"}}},
		{"cgroup v1 with swap accounting", res(nil, v1.ResourceList{v1.ResourceMemory: q("128Mi")}), nil, NodeConfig{SwapController: true},
			&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, MemoryLimitInBytes: 128 << 20, MemorySwapLimitInBytes: 128 << 20, OomScoreAdj: 999}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod(func(p *v1.Pod) {
				p.Spec.Containers[0].Resources = tc.c
				p.Spec.Resources = tc.podRes
				p.Status.QOSClass = ""
			})
			got := containerResources(p, &p.Spec.Containers[0], tc.node)
			assertProtoEqual(t, "resources", got, tc.want)
		})
	}
}

func TestOOMScoreAdj(t *testing.T) {
	const gi = int64(1 << 30)
	burstable := func(mem string) v1.ResourceRequirements {
		return v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: q(mem)}}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*v1.Pod)
		capacity int64
		want     int64
	}{
		{"best effort", nil, 8 * gi, 1000},
		{"guaranteed", func(p *v1.Pod) { p.Status.QOSClass = v1.PodQOSGuaranteed }, 8 * gi, -997},
		{"node critical", func(p *v1.Pod) {
			p.Spec.PriorityClassName = "system-node-critical"
			p.Spec.Priority = ptr(int32(2000001000))
		}, 8 * gi, -997},
		{"critical by name only is not", func(p *v1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }, 8 * gi, 1000},
		{"burstable by request share", func(p *v1.Pod) {
			p.Status.QOSClass = v1.PodQOSBurstable
			p.Spec.Containers[0].Resources = burstable("2Gi")
		}, 8 * gi, 750},
		{"burstable tiny request stays below best effort", func(p *v1.Pod) {
			p.Status.QOSClass = v1.PodQOSBurstable
			p.Spec.Containers[0].Resources = burstable("1")
		}, 8 * gi, 999},
		{"burstable huge request stays above guaranteed", func(p *v1.Pod) {
			p.Status.QOSClass = v1.PodQOSBurstable
			p.Spec.Containers[0].Resources = burstable("8Gi")
		}, 8 * gi, 3},
		{"burstable, capacity unknown", func(p *v1.Pod) {
			p.Status.QOSClass = v1.PodQOSBurstable
			p.Spec.Containers[0].Resources = burstable("2Gi")
		}, 0, 999},
		{"burstable with pod-level request shared", func(p *v1.Pod) {
			p.Status.QOSClass = v1.PodQOSBurstable
			p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: q("4Gi")}}
			p.Spec.Containers[0].Resources = burstable("2Gi")
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "b"})
		}, 8 * gi, 625}, // (2Gi + (4Gi-2Gi)/2) of 8Gi
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			if got := oomScoreAdj(p, &p.Spec.Containers[0], tc.capacity); got != tc.want {
				t.Errorf("= %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOOMScoreAdjSidecar(t *testing.T) {
	const gi = int64(1 << 30)
	p := testPod(func(p *v1.Pod) {
		p.Status.QOSClass = v1.PodQOSBurstable
		p.Spec.InitContainers = []v1.Container{{Name: "sidecar", RestartPolicy: ptr(v1.ContainerRestartPolicyAlways)}}
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: q("2Gi")}
	})
	// The sidecar requests nothing (999) but must not die before main (750).
	if got := oomScoreAdj(p, &p.Spec.InitContainers[0], 8*gi); got != 750 {
		t.Errorf("sidecar = %d, want 750", got)
	}
}

func TestPodQOS(t *testing.T) {
	gu := v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("1Gi")}, Limits: v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("1Gi")}}
	for _, tc := range []struct {
		name       string
		containers []v1.ResourceRequirements
		podLevel   *v1.ResourceRequirements
		status     v1.PodQOSClass
		want       v1.PodQOSClass
	}{
		{"status wins", []v1.ResourceRequirements{{}}, nil, v1.PodQOSGuaranteed, v1.PodQOSGuaranteed},
		{"best effort", []v1.ResourceRequirements{{}, {}}, nil, "", v1.PodQOSBestEffort},
		{"guaranteed", []v1.ResourceRequirements{gu, gu}, nil, "", v1.PodQOSGuaranteed},
		{"guaranteed and best effort mixed", []v1.ResourceRequirements{gu, {}}, nil, "", v1.PodQOSBurstable},
		{"cpu only", []v1.ResourceRequirements{{Limits: v1.ResourceList{v1.ResourceCPU: q("1")}, Requests: v1.ResourceList{v1.ResourceCPU: q("1")}}}, nil, "", v1.PodQOSBurstable},
		{"pod level", []v1.ResourceRequirements{{}}, &gu, "", v1.PodQOSGuaranteed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod(func(p *v1.Pod) {
				p.Status.QOSClass = tc.status
				p.Spec.Resources = tc.podLevel
				p.Spec.Containers = nil
				for _, r := range tc.containers {
					p.Spec.Containers = append(p.Spec.Containers, v1.Container{Resources: r})
				}
			})
			if got := podQOS(p); got != tc.want {
				t.Errorf("= %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSandboxResources(t *testing.T) {
	p := testPod(func(p *v1.Pod) {
		p.Spec.Containers = []v1.Container{
			{Name: "a", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: q("250m")}, Limits: v1.ResourceList{v1.ResourceCPU: q("500m"), v1.ResourceMemory: q("128Mi")}}},
			{Name: "b", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: q("250m")}, Limits: v1.ResourceList{v1.ResourceCPU: q("500m"), v1.ResourceMemory: q("128Mi")}}},
		}
		p.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: q("100m"), v1.ResourceMemory: q("32Mi")}
	})
	res, overhead := sandboxResources(p, true)
	assertProtoEqual(t, "resources", res, &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuShares: 512, CpuQuota: 100000, MemoryLimitInBytes: 256 << 20, Unified: map[string]string{"memory.oom.group": "1"}})
	assertProtoEqual(t, "overhead", overhead, &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuShares: 102, CpuQuota: 10000, MemoryLimitInBytes: 32 << 20, Unified: map[string]string{"memory.oom.group": "1"}})

	res, overhead = sandboxResources(testPod(), false)
	assertProtoEqual(t, "best-effort resources", res, &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2})
	assertProtoEqual(t, "no overhead", overhead, &runtimeapi.LinuxContainerResources{})
}
