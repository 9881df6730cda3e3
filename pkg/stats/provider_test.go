package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeHost is a machine with fixed counters; cpu and the pids' interfaces
// can be changed between summaries.
type fakeHost struct {
	cpu   uint64
	nets  map[int][]Interface
	du    map[string][2]uint64
	walks int
}

func (h *fakeHost) BootTime() (time.Time, error) { return time.Unix(100, 0), nil }
func (h *fakeHost) CPUUsage() (uint64, error)    { return h.cpu, nil }
func (h *fakeHost) Memory() (Memory, error) {
	return Memory{Total: 1000, Free: 300, InactiveFile: 200, AnonPages: 150}, nil
}
func (h *fakeHost) Interfaces(pid int) ([]Interface, error) {
	ifs, ok := h.nets[pid]
	if !ok {
		return nil, fmt.Errorf("no process %d", pid)
	}
	return ifs, nil
}
func (h *fakeHost) FsInfo(path string) (FsInfo, error) {
	return FsInfo{Capacity: 10000, Free: 4000, Available: 3000, Inodes: 100, InodesFree: 60}, nil
}
func (h *fakeHost) Processes() (int64, int64, error) { return 4194304, 42, nil }
func (h *fakeHost) DiskUsage(path string) (uint64, uint64, error) {
	h.walks++
	u := h.du[path]
	return u[0], u[1], nil
}

// verboseRuntime adds the verbose sandbox info (its pid) that the fake
// runtime does not give.
type verboseRuntime struct {
	*critest.FakeRuntimeService
	pids map[string]int
}

func (r verboseRuntime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	resp, err := r.FakeRuntimeService.PodSandboxStatus(ctx, id, verbose)
	if err != nil || !verbose {
		return resp, err
	}
	resp.Info = map[string]string{"info": fmt.Sprintf(`{"pid": %d, "processStatus": "running"}`, r.pids[id])}
	return resp, nil
}

func sandbox(id, ns, name, uid string, created int64, state runtimeapi.PodSandboxState) *critest.FakePodSandbox {
	return &critest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: id, State: state, CreatedAt: created,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid},
	}}
}

func ctr(id, sandboxID, name string, state runtimeapi.ContainerState) *critest.FakeContainer {
	return &critest.FakeContainer{SandboxID: sandboxID, ContainerStatus: runtimeapi.ContainerStatus{
		Id: id, State: state, CreatedAt: 5e9, Metadata: &runtimeapi.ContainerMetadata{Name: name},
	}}
}

func cstats(id string, at time.Time, cpuNs, ws uint64, nanoCores *uint64) *runtimeapi.ContainerStats {
	s := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpuNs}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: at.UnixNano(), WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
			UsageBytes: &runtimeapi.UInt64Value{Value: ws * 2}},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: at.UnixNano(), UsedBytes: &runtimeapi.UInt64Value{Value: 40},
			InodesUsed: &runtimeapi.UInt64Value{Value: 4}},
	}
	if nanoCores != nil {
		s.Cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: *nanoCores}
	}
	return s
}

type fixture struct {
	rt    verboseRuntime
	host  *fakeHost
	clock *clocktesting.FakeClock
	p     *Provider
	root  string
}

// newFixture is a node with pod "ns/web" (containers app and sidecar
// running, an exited init container, and a running ephemeral debugger),
// a stale sandbox of the same pod, and pod "ns/idle" whose container has
// no stats yet.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	t0 := time.Unix(2000, 0)
	f := &fixture{clock: clocktesting.NewFakeClock(t0), root: t.TempDir()}
	rt := critest.NewFakeRuntimeService()
	rt.SetFakeSandboxes([]*critest.FakePodSandbox{
		sandbox("sb-web", "ns", "web", "uid-web", 3e9, runtimeapi.PodSandboxState_SANDBOX_READY),
		sandbox("sb-web-old", "ns", "web", "uid-web", 1e9, runtimeapi.PodSandboxState_SANDBOX_READY),
		sandbox("sb-gone", "ns", "gone", "uid-gone", 1e9, runtimeapi.PodSandboxState_SANDBOX_NOTREADY),
		sandbox("sb-idle", "ns", "idle", "uid-idle", 2e9, runtimeapi.PodSandboxState_SANDBOX_READY),
	})
	rt.SetFakeContainers([]*critest.FakeContainer{
		ctr("c-app", "sb-web", "app", runtimeapi.ContainerState_CONTAINER_RUNNING),
		ctr("c-side", "sb-web", "sidecar", runtimeapi.ContainerState_CONTAINER_RUNNING),
		ctr("c-init", "sb-web", "init", runtimeapi.ContainerState_CONTAINER_EXITED),
		ctr("c-debug", "sb-web", "debugger", runtimeapi.ContainerState_CONTAINER_RUNNING),
		ctr("c-idle", "sb-idle", "idle", runtimeapi.ContainerState_CONTAINER_RUNNING),
	})
	rt.InjectError("ListPodSandboxStats", grpcstatus.Error(codes.Unimplemented, "unknown method ListPodSandboxStats"))
	f.rt = verboseRuntime{FakeRuntimeService: rt, pids: map[string]int{"sb-web": 71, "sb-idle": 72}}
	images := critest.NewFakeImageService()
	images.SetFakeFilesystemUsage([]*runtimeapi.FilesystemUsage{{
		FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/images"}, UsedBytes: &runtimeapi.UInt64Value{Value: 700},
		InodesUsed: &runtimeapi.UInt64Value{Value: 7}}})
	logs := filepath.Join(f.root, "logs")
	vols := filepath.Join(f.root, "pods", "uid-web", "volumes")
	for _, d := range []string{filepath.Join(vols, "kubernetes.io~empty-dir", "cache"), filepath.Join(vols, "kubernetes.io~projected", "token")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.host = &fakeHost{
		cpu: uint64(10 * time.Second),
		nets: map[int][]Interface{
			0:  {{Name: "lo", RxBytes: 9}, {Name: "eth0", RxBytes: 100, TxBytes: 200}, {Name: "veth1234", RxBytes: 1}},
			71: {{Name: "lo", RxBytes: 9}, {Name: "eth0", RxBytes: 10, TxBytes: 20, RxErrors: 1}},
		},
		du: map[string][2]uint64{
			filepath.Join(logs, "ns_web_uid-web", "app"):            {1000, 2},
			filepath.Join(vols, "kubernetes.io~empty-dir", "cache"): {5000, 3},
			filepath.Join(vols, "kubernetes.io~projected", "token"): {300, 5},
		},
	}
	f.p = NewProvider(Config{NodeName: "node-1", RootDir: f.root, PodLogsDir: logs, Runtime: f.rt, Images: images, Host: f.host, Clock: f.clock})
	return f
}

// setStats gives the running containers of web cumulative CPU as if app had
// used one core and sidecar half a core since t0, and debugger a rate the
// runtime computed itself.
func (f *fixture) setStats(at time.Time, since time.Duration) {
	f.rt.SetFakeContainerStats([]*runtimeapi.ContainerStats{
		cstats("c-app", at, uint64(since), 100, nil),
		cstats("c-side", at, uint64(since/2), 50, nil),
		cstats("c-debug", at, 7, 10, ptr(uint64(123))),
	})
}

func TestSummary(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t)
	f.setStats(f.clock.Now(), 0)
	first, err := f.p.Summary(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := podNames(first); !slices.Equal(got, []string{"ns/idle", "ns/web"}) {
		t.Fatalf("pods = %v, want the ready, newest sandboxes only", got)
	}
	web := first.Pods[1]
	if web.PodRef.UID != "uid-web" || web.StartTime.UnixNano() != 3e9 {
		t.Errorf("web = %+v, want the newest sandbox", web.PodRef)
	}
	if got := containerNames(web); !slices.Equal(got, []string{"app", "debugger", "sidecar"}) {
		t.Errorf("web's containers = %v, want the running ones, the ephemeral one included", got)
	}
	app := web.Containers[0]
	if app.CPU == nil || app.CPU.UsageNanoCores != nil || deref(app.CPU.UsageCoreNanoSeconds) != 0 {
		t.Errorf("app's first CPU = %s, want a cumulative figure and no rate yet", js(app.CPU))
	}
	if dbg := web.Containers[1]; deref(dbg.CPU.UsageNanoCores) != 123 {
		t.Errorf("debugger's rate = %s, want the runtime's 123", js(dbg.CPU))
	}
	if deref(web.Memory.WorkingSetBytes) != 160 || deref(web.Memory.UsageBytes) != 320 {
		t.Errorf("web's memory = %s, want the sum of its containers' (160 working set)", js(web.Memory))
	}
	if web.Network == nil || web.Network.Name != "eth0" || deref(web.Network.RxBytes) != 10 || len(web.Network.Interfaces) != 1 {
		t.Errorf("web's network = %s, want eth0 of the sandbox's netns, without lo", js(web.Network))
	}
	if app.Rootfs == nil || deref(app.Rootfs.UsedBytes) != 40 || deref(app.Rootfs.CapacityBytes) != 10000 {
		t.Errorf("app's rootfs = %s", js(app.Rootfs))
	}
	if app.Logs == nil || deref(app.Logs.UsedBytes) != 1000 {
		t.Errorf("app's logs = %s, want the log directory's 1000 bytes", js(app.Logs))
	}
	if len(web.VolumeStats) != 2 || web.VolumeStats[0].Name != "cache" || deref(web.VolumeStats[0].UsedBytes) != 5000 || web.VolumeStats[1].Name != "token" {
		t.Errorf("web's volumes = %s", js(web.VolumeStats))
	}
	// Three writable layers, app's logs, both volumes.
	if got := deref(web.EphemeralStorage.UsedBytes); got != 3*40+1000+5000+300 {
		t.Errorf("web's ephemeral storage = %d", got)
	}
	idle := first.Pods[0]
	if len(idle.Containers) != 1 || idle.Containers[0].CPU != nil || idle.CPU != nil || idle.Network != nil {
		t.Errorf("idle = %s, want its container without stats and no network (no such pid)", js(idle))
	}

	n := first.Node
	if n.NodeName != "node-1" || n.StartTime.Unix() != 100 || n.CPU.UsageNanoCores != nil || deref(n.CPU.UsageCoreNanoSeconds) != uint64(10*time.Second) {
		t.Errorf("node = %s", js(n))
	}
	// 1000 total, 300 free, 200 of the 700 used are inactive page cache.
	if deref(n.Memory.WorkingSetBytes) != 500 || deref(n.Memory.AvailableBytes) != 500 || deref(n.Memory.UsageBytes) != 700 {
		t.Errorf("node memory = %s", js(n.Memory))
	}
	if n.Network == nil || n.Network.Name != "eth0" || len(n.Network.Interfaces) != 1 {
		t.Errorf("node network = %s, want eth0 only", js(n.Network))
	}
	if deref(n.Fs.UsedBytes) != 6000 || deref(n.Fs.AvailableBytes) != 3000 || deref(n.Fs.InodesUsed) != 40 {
		t.Errorf("node fs = %s", js(n.Fs))
	}
	if n.Runtime == nil || deref(n.Runtime.ImageFs.UsedBytes) != 700 || n.Runtime.ContainerFs != n.Runtime.ImageFs {
		t.Errorf("runtime fs = %s", js(n.Runtime))
	}
	if deref(n.Rlimit.MaxPID) != 4194304 || deref(n.Rlimit.NumOfRunningProcesses) != 42 {
		t.Errorf("rlimit = %s", js(n.Rlimit))
	}

	// Ten seconds later: rates from the previous samples.
	f.clock.Step(10 * time.Second)
	f.setStats(f.clock.Now(), 10*time.Second)
	f.host.cpu += uint64(15 * time.Second)
	walks := f.host.walks
	second, err := f.p.Summary(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	web = second.Pods[1]
	if got := deref(web.Containers[0].CPU.UsageNanoCores); got != 1e9 {
		t.Errorf("app's rate = %d, want one core", got)
	}
	if got := deref(web.CPU.UsageNanoCores); got != 1e9+5e8+123 {
		t.Errorf("web's rate = %d, want the sum of its containers'", got)
	}
	if got := deref(second.Node.CPU.UsageNanoCores); got != 15e8 {
		t.Errorf("node's rate = %d, want 1.5 cores", got)
	}
	if f.host.walks != walks {
		t.Errorf("walked %d directories again within DiskUsageMaxAge", f.host.walks-walks)
	}
	if n := countCalls(f.rt.FakeRuntimeService, "ListPodSandboxStats"); n != 1 {
		t.Errorf("ListPodSandboxStats called %d times, want once: Unimplemented is remembered", n)
	}
	if n := countCalls(f.rt.FakeRuntimeService, "PodSandboxStatus"); n != 2 {
		t.Errorf("PodSandboxStatus called %d times, want once per sandbox: pids are cached", n)
	}
}

func TestSummaryOnlyCPUAndMemory(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t)
	f.setStats(f.clock.Now(), 0)
	s, err := f.p.Summary(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	n := s.Node
	if n.CPU == nil || n.Memory == nil || n.Network != nil || n.Fs != nil || n.Runtime != nil || n.Rlimit != nil {
		t.Errorf("node = %s, want CPU and memory only", js(n))
	}
	web := s.Pods[1]
	if web.CPU == nil || web.Memory == nil || web.Network != nil || web.VolumeStats != nil || web.EphemeralStorage != nil ||
		web.Containers[0].Rootfs != nil || web.Containers[0].Logs != nil {
		t.Errorf("web = %s, want CPU and memory only", js(web))
	}
	if f.host.walks != 0 || countCalls(f.rt.FakeRuntimeService, "PodSandboxStatus") != 0 {
		t.Errorf("walked %d directories, asked sandbox statuses: not needed for CPU and memory", f.host.walks)
	}
}

// TestSummaryPodSandboxStats: a runtime that serves pod-level stats gives
// the pod's CPU, memory and network; its rate comes from the cache too.
func TestSummaryPodSandboxStats(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t)
	f.setStats(f.clock.Now(), 0)
	f.rt.Errors = nil
	sbStats := func(cpu uint64) {
		at := f.clock.Now().UnixNano()
		f.rt.SetFakePodSandboxStats([]*runtimeapi.PodSandboxStats{{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-web"},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:    &runtimeapi.CpuUsage{Timestamp: at, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}},
				Memory: &runtimeapi.MemoryUsage{Timestamp: at, WorkingSetBytes: &runtimeapi.UInt64Value{Value: 4096}},
				Network: &runtimeapi.NetworkUsage{Timestamp: at,
					DefaultInterface: &runtimeapi.NetworkInterfaceUsage{Name: "eth0", RxBytes: &runtimeapi.UInt64Value{Value: 77}}},
			},
		}})
	}
	sbStats(0)
	if _, err := f.p.Summary(ctx, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(2 * time.Second)
	sbStats(uint64(time.Second))
	s, err := f.p.Summary(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	web := s.Pods[1]
	if deref(web.Memory.WorkingSetBytes) != 4096 || deref(web.CPU.UsageNanoCores) != 5e8 || deref(web.Network.RxBytes) != 77 {
		t.Errorf("web = cpu %s memory %s network %s, want the sandbox's figures", js(web.CPU), js(web.Memory), js(web.Network))
	}
	// Only idle's, which the runtime gave no stats: once, its pid cached.
	if n := countCalls(f.rt.FakeRuntimeService, "PodSandboxStatus"); n != 1 {
		t.Errorf("asked %d sandbox statuses, want 1: the runtime's network stats need no pid", n)
	}
}

func TestSummaryRuntimeDown(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := newFixture(t)
	f.rt.InjectError("ListContainerStats", grpcstatus.Error(codes.Unavailable, "connection refused"))
	if _, err := f.p.Summary(ctx, false); err == nil {
		t.Error("Summary succeeded without container stats")
	}
}

func podNames(s *statsapi.Summary) []string {
	var out []string
	for _, p := range s.Pods {
		out = append(out, p.PodRef.Namespace+"/"+p.PodRef.Name)
	}
	return out
}

func containerNames(p statsapi.PodStats) []string {
	var out []string
	for _, c := range p.Containers {
		out = append(out, c.Name)
	}
	return out
}

func countCalls(rt *critest.FakeRuntimeService, name string) int {
	rt.Lock()
	defer rt.Unlock()
	n := 0
	for _, c := range rt.Called {
		if c == name {
			n++
		}
	}
	return n
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
