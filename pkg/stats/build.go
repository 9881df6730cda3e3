package stats

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// podInputs is what the runtime told about pods, for buildPods.
type podInputs struct {
	sandboxes      []*runtimeapi.PodSandbox
	containers     []*runtimeapi.Container
	containerStats map[string]*runtimeapi.ContainerStats  // by container ID
	sandboxStats   map[string]*runtimeapi.PodSandboxStats // by sandbox ID; nil when unserved
	// rootfs and nodefs are the file systems of writable layers and of the
	// node, for the capacity beside a container's usage.
	rootfs, nodefs   *statsapi.FsStats
	onlyCPUAndMemory bool
}

// builtPod is a pod's stats and the sandbox they came from.
type builtPod struct {
	pod     statsapi.PodStats
	sandbox *runtimeapi.PodSandbox
}

// rateFunc turns a cumulative CPU sample under a key into a rate, as
// cpuCache.rate does.
type rateFunc func(key string, s cpuSample) *uint64

// buildPods assembles the pods' and containers' stats from the runtime's
// answers, ordered by namespace and name. Every key it asks rate about is
// added to live. Pod CPU and memory are the runtime's pod-level figures when
// it reports them, else the sum of the containers', as the kubelet's CRI
// stats provider does without cAdvisor.
func buildPods(in podInputs, rate rateFunc, live map[string]bool) []builtPod {
	bySandbox := map[string][]*runtimeapi.Container{}
	for _, c := range in.containers {
		bySandbox[c.GetPodSandboxId()] = append(bySandbox[c.GetPodSandboxId()], c)
	}
	out := make([]builtPod, 0, len(in.sandboxes))
	for _, sb := range in.sandboxes {
		md := sb.GetMetadata()
		ps := statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
			StartTime:  metav1.NewTime(time.Unix(0, sb.GetCreatedAt())),
			Containers: []statsapi.ContainerStats{},
		}
		cs := bySandbox[sb.GetId()]
		sort.Slice(cs, func(i, j int) bool { return cs[i].GetMetadata().GetName() < cs[j].GetMetadata().GetName() })
		for _, c := range cs {
			ps.Containers = append(ps.Containers, containerStats(c, in.containerStats[c.GetId()], in.rootfs, in.onlyCPUAndMemory, rate, live))
		}
		if st := in.sandboxStats[sb.GetId()]; st.GetLinux().GetCpu() != nil || st.GetLinux().GetMemory() != nil {
			key := "pod/" + md.GetUid()
			ps.CPU = criCPU(st.GetLinux().GetCpu(), key, rate, live)
			ps.Memory = criMemory(st.GetLinux().GetMemory())
		} else {
			sumContainers(&ps)
		}
		out = append(out, builtPod{pod: ps, sandbox: sb})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].pod.PodRef, out[j].pod.PodRef
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func containerStats(c *runtimeapi.Container, st *runtimeapi.ContainerStats, rootfs *statsapi.FsStats, onlyCPUAndMemory bool, rate rateFunc, live map[string]bool) statsapi.ContainerStats {
	cs := statsapi.ContainerStats{
		Name:      c.GetMetadata().GetName(),
		StartTime: metav1.NewTime(time.Unix(0, c.GetCreatedAt())),
	}
	if st == nil {
		return cs
	}
	cs.CPU = criCPU(st.GetCpu(), c.GetId(), rate, live)
	cs.Memory = criMemory(st.GetMemory())
	if !onlyCPUAndMemory {
		if wl := st.GetWritableLayer(); wl != nil {
			fs := &statsapi.FsStats{Time: metav1.NewTime(time.Unix(0, wl.GetTimestamp()))}
			if rootfs != nil {
				fs.CapacityBytes, fs.AvailableBytes, fs.Inodes, fs.InodesFree = rootfs.CapacityBytes, rootfs.AvailableBytes, rootfs.Inodes, rootfs.InodesFree
			}
			if wl.UsedBytes != nil {
				fs.UsedBytes = ptr(wl.UsedBytes.Value)
			}
			if wl.InodesUsed != nil {
				fs.InodesUsed = ptr(wl.InodesUsed.Value)
			}
			cs.Rootfs = fs
		}
	}
	return cs
}

// criCPU converts the runtime's CPU usage; the rate is the runtime's when it
// computes one, else derived from the previous sample under key.
func criCPU(u *runtimeapi.CpuUsage, key string, rate rateFunc, live map[string]bool) *statsapi.CPUStats {
	if u == nil {
		return nil
	}
	at := time.Unix(0, u.GetTimestamp())
	out := &statsapi.CPUStats{Time: metav1.NewTime(at)}
	if u.UsageCoreNanoSeconds != nil {
		out.UsageCoreNanoSeconds = ptr(u.UsageCoreNanoSeconds.Value)
	}
	switch {
	case u.UsageNanoCores != nil:
		out.UsageNanoCores = ptr(u.UsageNanoCores.Value)
	case u.UsageCoreNanoSeconds != nil:
		live[key] = true
		out.UsageNanoCores = rate(key, cpuSample{at: at, usage: u.UsageCoreNanoSeconds.Value})
	}
	return out
}

func criMemory(m *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	if m == nil {
		return nil
	}
	out := &statsapi.MemoryStats{Time: metav1.NewTime(time.Unix(0, m.GetTimestamp()))}
	set := func(dst **uint64, v *runtimeapi.UInt64Value) {
		if v != nil {
			*dst = ptr(v.Value)
		}
	}
	set(&out.WorkingSetBytes, m.WorkingSetBytes)
	set(&out.AvailableBytes, m.AvailableBytes)
	set(&out.UsageBytes, m.UsageBytes)
	set(&out.RSSBytes, m.RssBytes)
	set(&out.PageFaults, m.PageFaults)
	set(&out.MajorPageFaults, m.MajorPageFaults)
	return out
}

// sumContainers sets the pod's CPU and memory to the sum of its containers'.
// The time is the latest of theirs.
func sumContainers(ps *statsapi.PodStats) {
	for _, c := range ps.Containers {
		if c.CPU != nil {
			if ps.CPU == nil {
				ps.CPU = &statsapi.CPUStats{}
			}
			if c.CPU.Time.After(ps.CPU.Time.Time) {
				ps.CPU.Time = c.CPU.Time
			}
			addTo(&ps.CPU.UsageCoreNanoSeconds, c.CPU.UsageCoreNanoSeconds)
			addTo(&ps.CPU.UsageNanoCores, c.CPU.UsageNanoCores)
		}
		if c.Memory != nil {
			if ps.Memory == nil {
				ps.Memory = &statsapi.MemoryStats{}
			}
			if c.Memory.Time.After(ps.Memory.Time.Time) {
				ps.Memory.Time = c.Memory.Time
			}
			addTo(&ps.Memory.WorkingSetBytes, c.Memory.WorkingSetBytes)
			addTo(&ps.Memory.UsageBytes, c.Memory.UsageBytes)
			addTo(&ps.Memory.AvailableBytes, c.Memory.AvailableBytes)
			addTo(&ps.Memory.RSSBytes, c.Memory.RSSBytes)
			addTo(&ps.Memory.PageFaults, c.Memory.PageFaults)
			addTo(&ps.Memory.MajorPageFaults, c.Memory.MajorPageFaults)
		}
	}
}

// addTo adds v to *dst, leaving *dst nil while every v is.
func addTo(dst **uint64, v *uint64) {
	if v == nil {
		return
	}
	if *dst == nil {
		*dst = ptr(uint64(0))
	}
	**dst += *v
}

// newestSandboxes keeps, for each pod UID, its newest sandbox: a pod whose
// sandbox was re-created may briefly have two ready.
func newestSandboxes(sbs []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	newest := map[string]*runtimeapi.PodSandbox{}
	for _, s := range sbs {
		uid := s.GetMetadata().GetUid()
		if cur, ok := newest[uid]; !ok || s.GetCreatedAt() > cur.GetCreatedAt() {
			newest[uid] = s
		}
	}
	out := make([]*runtimeapi.PodSandbox, 0, len(newest))
	for _, s := range newest {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}
