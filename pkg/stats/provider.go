package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// Runtime is the part of the CRI runtime service the Provider reads.
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)
	ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error)
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
}

// ImageService is the part of the CRI image service the Provider reads: the
// image file system's usage.
type ImageService interface {
	ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error)
}

// Config is what a Provider reads from.
type Config struct {
	NodeName string
	// RootDir is the agent's --root-dir: its file system is the node's
	// (nodefs), and pods' volumes are under RootDir/pods/UID/volumes.
	RootDir string
	// PodLogsDir holds the containers' logs, NAMESPACE_NAME_UID/CONTAINER.
	PodLogsDir string
	Runtime    Runtime
	Images     ImageService
	Host       Host
	Clock      clock.PassiveClock
	// MinCPUSampleInterval is the shortest interval a CPU rate is computed
	// over (default 1s); closer scrapes get the previous rate.
	MinCPUSampleInterval time.Duration
	// DiskUsageMaxAge is how long a walk of a volume or log directory is
	// reused (default 1m).
	DiskUsageMaxAge time.Duration
}

// Provider answers the Summary API from the runtime and the host.
type Provider struct {
	cfg Config
	cpu *cpuCache
	du  *duCache
	// noSandboxStats is set once the runtime answered Unimplemented to
	// ListPodSandboxStats (containerd before 1.7 on some set-ups): pods
	// are then summed from their containers without asking again.
	noSandboxStats atomic.Bool

	mu   sync.Mutex
	pids map[string]int // sandbox ID -> its pid, for the netns counters
}

// NewProvider returns a Provider; cfg's Runtime, Images and Host are required.
func NewProvider(cfg Config) *Provider {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MinCPUSampleInterval == 0 {
		cfg.MinCPUSampleInterval = time.Second
	}
	if cfg.DiskUsageMaxAge == 0 {
		cfg.DiskUsageMaxAge = time.Minute
	}
	return &Provider{
		cfg:  cfg,
		cpu:  newCPUCache(cfg.MinCPUSampleInterval),
		du:   newDUCache(cfg.Host, cfg.DiskUsageMaxAge, cfg.Clock.Now),
		pids: map[string]int{},
	}
}

// Summary returns the node's and its pods' stats. With onlyCPUAndMemory,
// as /stats/summary?only_cpu_and_memory=true and /metrics/resource, it
// leaves out network, file systems, volumes and process counts. It fails
// only when the runtime cannot list pods or containers; a reading of the
// host that fails leaves its field out.
func (p *Provider) Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error) {
	logger := klog.FromContext(ctx)
	sandboxes, err := p.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	containers, err := p.cfg.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	cstats, err := p.cfg.Runtime.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", err)
	}
	sbStats := p.sandboxStats(ctx)

	in := podInputs{
		sandboxes:        newestSandboxes(sandboxes),
		containers:       containers,
		containerStats:   map[string]*runtimeapi.ContainerStats{},
		sandboxStats:     sbStats,
		onlyCPUAndMemory: onlyCPUAndMemory,
	}
	for _, s := range cstats {
		in.containerStats[s.GetAttributes().GetId()] = s
	}
	var nodeFs, imageFs *statsapi.FsStats
	var containerFs *statsapi.FsStats
	now := metav1.NewTime(p.cfg.Clock.Now())
	if !onlyCPUAndMemory {
		nodeFs = p.fsStats(ctx, p.cfg.RootDir, now)
		imageFs, containerFs = p.imageFsStats(ctx, now)
		in.rootfs = containerFs
		in.nodefs = nodeFs
	}

	live := map[string]bool{nodeCPUKey: true}
	summary := &statsapi.Summary{Node: p.nodeStats(ctx, now, onlyCPUAndMemory), Pods: []statsapi.PodStats{}}
	if !onlyCPUAndMemory {
		summary.Node.Fs = nodeFs
		summary.Node.Runtime = &statsapi.RuntimeStats{ImageFs: imageFs, ContainerFs: containerFs}
	}
	for _, ps := range buildPods(in, p.cpu.rate, live) {
		if !onlyCPUAndMemory {
			p.addNetwork(ctx, &ps.pod, ps.sandbox, sbStats[ps.sandbox.GetId()])
			p.addDisk(ctx, &ps.pod, in.nodefs)
		}
		summary.Pods = append(summary.Pods, ps.pod)
	}
	p.cpu.keep(live)
	if !onlyCPUAndMemory {
		p.du.sweep()
		p.forgetPIDs(in.sandboxes)
	}
	logger.V(5).Info("Computed the stats summary", "pods", len(summary.Pods), "onlyCPUAndMemory", onlyCPUAndMemory)
	return summary, nil
}

// sandboxStats asks the runtime for pod-level stats, by sandbox ID; nil when
// it does not serve them.
func (p *Provider) sandboxStats(ctx context.Context) map[string]*runtimeapi.PodSandboxStats {
	if p.noSandboxStats.Load() {
		return nil
	}
	list, err := p.cfg.Runtime.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if err != nil {
		if grpcstatus.Code(err) == codes.Unimplemented {
			p.noSandboxStats.Store(true)
			klog.FromContext(ctx).V(2).Info("The runtime does not serve pod sandbox stats; summing pods from their containers", "err", err)
			return nil
		}
		// containerd 1.6 fails them all when one sandbox has no cgroup
		// parent: it may serve them again once that pod is gone.
		klog.FromContext(ctx).V(4).Info("Failed to list pod sandbox stats; summing pods from their containers", "err", err)
		return nil
	}
	out := make(map[string]*runtimeapi.PodSandboxStats, len(list))
	for _, s := range list {
		out[s.GetAttributes().GetId()] = s
	}
	return out
}

const nodeCPUKey = "node"

func (p *Provider) nodeStats(ctx context.Context, now metav1.Time, onlyCPUAndMemory bool) statsapi.NodeStats {
	logger := klog.FromContext(ctx)
	h := p.cfg.Host
	ns := statsapi.NodeStats{NodeName: p.cfg.NodeName}
	if boot, err := h.BootTime(); err == nil {
		ns.StartTime = metav1.NewTime(boot)
	} else {
		logger.V(2).Info("Failed to read the node's boot time", "err", err)
	}
	if usage, err := h.CPUUsage(); err == nil {
		ns.CPU = &statsapi.CPUStats{Time: now, UsageCoreNanoSeconds: &usage,
			UsageNanoCores: p.cpu.rate(nodeCPUKey, cpuSample{at: now.Time, usage: usage})}
	} else {
		logger.V(2).Info("Failed to read the node's CPU usage", "err", err)
	}
	if m, err := h.Memory(); err == nil {
		ns.Memory = nodeMemory(m, now)
	} else {
		logger.V(2).Info("Failed to read the node's memory", "err", err)
	}
	if onlyCPUAndMemory {
		return ns
	}
	if ifs, err := h.Interfaces(0); err == nil {
		ns.Network = networkStats(ifs, now)
	} else {
		logger.V(2).Info("Failed to read the node's network counters", "err", err)
	}
	if maxPID, running, err := h.Processes(); err == nil {
		ns.Rlimit = &statsapi.RlimitStats{Time: now, MaxPID: &maxPID, NumOfRunningProcesses: &running}
	} else {
		logger.V(2).Info("Failed to read the node's process counts", "err", err)
	}
	return ns
}

// nodeMemory derives the node's memory stats the way cAdvisor does for the
// root cgroup: the working set is what is used minus the inactive page
// cache, which the kernel can reclaim; available is what remains of the
// capacity after the working set, the figure memory.available evicts on.
func nodeMemory(m Memory, now metav1.Time) *statsapi.MemoryStats {
	usage := m.Total - min(m.Free, m.Total)
	ws := usage - min(m.InactiveFile, usage)
	avail := m.Total - ws
	rss := m.AnonPages
	return &statsapi.MemoryStats{Time: now, UsageBytes: &usage, WorkingSetBytes: &ws, AvailableBytes: &avail, RSSBytes: &rss}
}

// networkStats turns counters into NetworkStats with the loopback and the
// pods' veth ends left out, as cAdvisor does, and eth0, as the kubelet's default interface, as the top-level figures
// (the first interface when there is no eth0).
func networkStats(ifs []Interface, now metav1.Time) *statsapi.NetworkStats {
	ns := &statsapi.NetworkStats{Time: now}
	for _, i := range ifs {
		if i.Name == "lo" || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		ns.Interfaces = append(ns.Interfaces, statsapi.InterfaceStats{
			Name: i.Name, RxBytes: ptr(i.RxBytes), RxErrors: ptr(i.RxErrors), TxBytes: ptr(i.TxBytes), TxErrors: ptr(i.TxErrors)})
	}
	if len(ns.Interfaces) == 0 {
		return nil
	}
	ns.InterfaceStats = ns.Interfaces[0]
	for _, i := range ns.Interfaces {
		if i.Name == "eth0" {
			ns.InterfaceStats = i
		}
	}
	return ns
}

func (p *Provider) fsStats(ctx context.Context, path string, now metav1.Time) *statsapi.FsStats {
	fi, err := p.cfg.Host.FsInfo(path)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Failed to read file system stats", "path", path, "err", err)
		return nil
	}
	return &statsapi.FsStats{Time: now, CapacityBytes: ptr(fi.Capacity), AvailableBytes: ptr(fi.Available),
		UsedBytes: ptr(fi.Capacity - min(fi.Free, fi.Capacity)), Inodes: ptr(fi.Inodes), InodesFree: ptr(fi.InodesFree),
		InodesUsed: ptr(fi.Inodes - min(fi.InodesFree, fi.Inodes))}
}

// imageFsStats returns the image file system's stats (what the runtime uses
// for images) and the container file system's (writable layers): the same
// one unless the runtime reports them apart.
func (p *Provider) imageFsStats(ctx context.Context, now metav1.Time) (*statsapi.FsStats, *statsapi.FsStats) {
	resp, err := p.cfg.Images.ImageFsInfo(ctx)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Failed to read the image file system's usage", "err", err)
		return nil, nil
	}
	one := func(usages []*runtimeapi.FilesystemUsage) *statsapi.FsStats {
		if len(usages) == 0 {
			return nil
		}
		u := usages[0]
		fs := p.fsStats(ctx, u.GetFsId().GetMountpoint(), now)
		if fs == nil {
			fs = &statsapi.FsStats{Time: now}
		}
		if u.UsedBytes != nil {
			fs.UsedBytes = ptr(u.UsedBytes.Value)
		}
		if u.InodesUsed != nil {
			fs.InodesUsed = ptr(u.InodesUsed.Value)
		}
		return fs
	}
	image := one(resp.GetImageFilesystems())
	container := one(resp.GetContainerFilesystems())
	if container == nil {
		container = image
	}
	return image, container
}

// addNetwork sets the pod's network stats: the runtime's when it reports
// them, otherwise the counters of the sandbox's network namespace, read
// through its pid.
func (p *Provider) addNetwork(ctx context.Context, ps *statsapi.PodStats, sb *runtimeapi.PodSandbox, st *runtimeapi.PodSandboxStats) {
	now := metav1.NewTime(p.cfg.Clock.Now())
	if n := st.GetLinux().GetNetwork(); n != nil {
		ps.Network = criNetwork(n)
		return
	}
	pid, err := p.sandboxPID(ctx, sb.GetId())
	if err != nil {
		klog.FromContext(ctx).V(4).Info("No network stats for the pod", "pod", klog.KRef(ps.PodRef.Namespace, ps.PodRef.Name), "err", err)
		return
	}
	ifs, err := p.cfg.Host.Interfaces(pid)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("No network stats for the pod", "pod", klog.KRef(ps.PodRef.Namespace, ps.PodRef.Name), "err", err)
		return
	}
	ps.Network = networkStats(ifs, now)
}

func criNetwork(n *runtimeapi.NetworkUsage) *statsapi.NetworkStats {
	conv := func(i *runtimeapi.NetworkInterfaceUsage) statsapi.InterfaceStats {
		is := statsapi.InterfaceStats{Name: i.GetName()}
		if i.RxBytes != nil {
			is.RxBytes = ptr(i.RxBytes.Value)
		}
		if i.RxErrors != nil {
			is.RxErrors = ptr(i.RxErrors.Value)
		}
		if i.TxBytes != nil {
			is.TxBytes = ptr(i.TxBytes.Value)
		}
		if i.TxErrors != nil {
			is.TxErrors = ptr(i.TxErrors.Value)
		}
		return is
	}
	ns := &statsapi.NetworkStats{Time: metav1.NewTime(time.Unix(0, n.GetTimestamp()))}
	if d := n.GetDefaultInterface(); d != nil {
		ns.InterfaceStats = conv(d)
	}
	for _, i := range n.GetInterfaces() {
		ns.Interfaces = append(ns.Interfaces, conv(i))
	}
	return ns
}

// sandboxPID returns the pid of the sandbox's first process, from the
// runtime's verbose status ("info" holds JSON with a "pid", as containerd
// and CRI-O report it). A sandbox keeps its pid: it is asked once.
func (p *Provider) sandboxPID(ctx context.Context, id string) (int, error) {
	p.mu.Lock()
	pid, ok := p.pids[id]
	p.mu.Unlock()
	if ok {
		return pid, nil
	}
	resp, err := p.cfg.Runtime.PodSandboxStatus(ctx, id, true)
	if err != nil {
		return 0, fmt.Errorf("pod sandbox status: %w", err)
	}
	pid, err = criconfig.VerbosePID(resp.GetInfo())
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.pids[id] = pid
	p.mu.Unlock()
	return pid, nil
}

func (p *Provider) forgetPIDs(live []*runtimeapi.PodSandbox) {
	keep := make(map[string]bool, len(live))
	for _, s := range live {
		keep[s.GetId()] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.pids {
		if !keep[id] {
			delete(p.pids, id)
		}
	}
}

// addDisk fills the containers' logs, the pod's volumes and its ephemeral
// storage: writable layers, logs and the volumes that live in the pod's
// directory (all of this agent's volume types are ephemeral).
func (p *Provider) addDisk(ctx context.Context, ps *statsapi.PodStats, nodefs *statsapi.FsStats) {
	logger := klog.FromContext(ctx)
	now := metav1.NewTime(p.cfg.Clock.Now())
	var used, inodes uint64
	logDir := filepath.Join(p.cfg.PodLogsDir, ps.PodRef.Namespace+"_"+ps.PodRef.Name+"_"+ps.PodRef.UID)
	for i := range ps.Containers {
		c := &ps.Containers[i]
		if c.Rootfs != nil {
			used += deref(c.Rootfs.UsedBytes)
			inodes += deref(c.Rootfs.InodesUsed)
		}
		b, n, err := p.du.usage(filepath.Join(logDir, c.Name))
		if err != nil {
			logger.V(4).Info("Failed to measure a container's logs", "pod", klog.KRef(ps.PodRef.Namespace, ps.PodRef.Name), "container", c.Name, "err", err)
			continue
		}
		c.Logs = withUsage(nodefs, now, b, n)
		used += b
		inodes += n
	}
	volumesDir := filepath.Join(p.cfg.RootDir, "pods", ps.PodRef.UID, "volumes")
	plugins, _ := os.ReadDir(volumesDir)
	for _, plugin := range plugins {
		vols, _ := os.ReadDir(filepath.Join(volumesDir, plugin.Name()))
		for _, v := range vols {
			dir := filepath.Join(volumesDir, plugin.Name(), v.Name())
			b, n, err := p.du.usage(dir)
			if err != nil {
				logger.V(4).Info("Failed to measure a volume", "pod", klog.KRef(ps.PodRef.Namespace, ps.PodRef.Name), "volume", v.Name(), "err", err)
				continue
			}
			// A volume's capacity is its own file system's (tmpfs for
			// secrets), not the node's.
			fs := p.fsStats(ctx, dir, now)
			ps.VolumeStats = append(ps.VolumeStats, statsapi.VolumeStats{Name: v.Name(), FsStats: *withUsage(fs, now, b, n)})
			used += b
			inodes += n
		}
	}
	sort.Slice(ps.VolumeStats, func(i, j int) bool { return ps.VolumeStats[i].Name < ps.VolumeStats[j].Name })
	ps.EphemeralStorage = withUsage(nodefs, now, used, inodes)
}

// withUsage is fs's capacity and free space with a usage of its own.
func withUsage(fs *statsapi.FsStats, now metav1.Time, used, inodes uint64) *statsapi.FsStats {
	out := &statsapi.FsStats{Time: now, UsedBytes: ptr(used), InodesUsed: ptr(inodes)}
	if fs != nil {
		out.CapacityBytes, out.AvailableBytes, out.Inodes, out.InodesFree = fs.CapacityBytes, fs.AvailableBytes, fs.Inodes, fs.InodesFree
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
