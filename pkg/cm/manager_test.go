package cm

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
)

// fakeWriter keeps cgroups as a map from cgroupfs path to config.
type fakeWriter struct {
	cgroups map[string]ResourceConfig
	// busy cgroups cannot be removed.
	busy map[string]bool
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{cgroups: map[string]ResourceConfig{}, busy: map[string]bool{}}
}

func (f *fakeWriter) Apply(name CgroupName, rc ResourceConfig) error {
	f.cgroups[name.ToCgroupfs()] = rc
	return nil
}

func (f *fakeWriter) Exists(name CgroupName) bool {
	_, ok := f.cgroups[name.ToCgroupfs()]
	return ok
}

func (f *fakeWriter) Destroy(name CgroupName) error {
	if f.busy[name.ToCgroupfs()] {
		return errors.New("device or resource busy")
	}
	delete(f.cgroups, name.ToCgroupfs())
	return nil
}

func (f *fakeWriter) Children(name CgroupName) ([]string, error) {
	var out []string
	for p := range f.cgroups {
		if filepath.Dir(p) == name.ToCgroupfs() {
			out = append(out, filepath.Base(p))
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeWriter) paths() []string {
	var out []string
	for p := range f.cgroups {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func qosOf(p *v1.Pod) v1.PodQOSClass { return p.Status.QOSClass }

func TestManagerLifecycle(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	burstable := podWith(v1.PodQOSBurstable, ctr(rl("cpu", "500m"), nil))
	burstable.UID = "b1"
	guaranteed := podWith(v1.PodQOSGuaranteed, ctr(rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")))
	guaranteed.UID = "g1"
	finished := podWith(v1.PodQOSBurstable, ctr(rl("cpu", "2"), nil))
	finished.Status.Phase = v1.PodSucceeded
	pods := []*v1.Pod{burstable, guaranteed, finished}

	w := newFakeWriter()
	m := newManager(Config{Root: "/ea", Driver: DriverCgroupfs, Capacity: rl("cpu", "2", "memory", "4Gi"), QOS: qosOf,
		Pods: func() []*v1.Pod { return pods }, PodPidsLimit: 100}, w)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := w.paths(), []string{"/ea/kubepods", "/ea/kubepods/besteffort", "/ea/kubepods/burstable"}; !slices.Equal(got, want) {
		t.Errorf("after Start: %v, want %v", got, want)
	}
	// The finished pod's requests do not count.
	if got := *w.cgroups["/ea/kubepods/burstable"].CPUShares; got != 512 {
		t.Errorf("burstable tier shares = %d, want 512", got)
	}
	if got := *w.cgroups["/ea/kubepods"].CPUShares; got != 2048 {
		t.Errorf("kubepods shares = %d, want 2048", got)
	}

	for _, tc := range []struct {
		pod  *v1.Pod
		want string
	}{{burstable, "/ea/kubepods/burstable/podb1"}, {guaranteed, "/ea/kubepods/podg1"}} {
		parent, err := m.EnsurePod(ctx, tc.pod)
		if err != nil || parent != tc.want {
			t.Errorf("EnsurePod(%s) = %q, %v, want %q", tc.pod.UID, parent, err, tc.want)
		}
		if rc := w.cgroups[tc.want]; rc.PidsLimit == nil || *rc.PidsLimit != 100 {
			t.Errorf("%s: pids limit %v", tc.want, rc.PidsLimit)
		}
	}

	// A stray cgroup of a pod gone while the agent was down, and a busy one.
	w.cgroups["/ea/kubepods/besteffort/podgone"] = ResourceConfig{}
	w.cgroups["/ea/kubepods/burstable/podbusy"] = ResourceConfig{}
	w.busy["/ea/kubepods/burstable/podbusy"] = true
	has := func(uid types.UID) bool { return uid == "b1" || uid == "g1" }
	m.Sweep(ctx, has)
	if got, want := w.paths(), []string{"/ea/kubepods", "/ea/kubepods/besteffort", "/ea/kubepods/burstable",
		"/ea/kubepods/burstable/podb1", "/ea/kubepods/burstable/podbusy", "/ea/kubepods/podg1"}; !slices.Equal(got, want) {
		t.Errorf("after Sweep: %v, want %v", got, want)
	}
	delete(w.busy, "/ea/kubepods/burstable/podbusy")
	m.Sweep(ctx, has)
	if w.Exists(ParseCgroupfs("/ea/kubepods/burstable/podbusy")) {
		t.Error("the next sweep left the cgroup no longer busy")
	}

	if err := m.RemovePod(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if err := m.RemovePod(ctx, "b1"); err != nil {
		t.Errorf("second RemovePod: %v", err)
	}
	if w.Exists(ParseCgroupfs("/ea/kubepods/burstable/podb1")) {
		t.Error("pod cgroup left after RemovePod")
	}
}

func TestManagerEnsureUpdatesTiersForANewPod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	var pods []*v1.Pod
	w := newFakeWriter()
	m := newManager(Config{Root: "/", Driver: DriverSystemd, QOS: qosOf, Pods: func() []*v1.Pod { return pods }}, w)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p := podWith(v1.PodQOSBurstable, ctr(rl("cpu", "1"), nil))
	p.UID = "1-2"
	pods = append(pods, p)
	parent, err := m.EnsurePod(ctx, p)
	if err != nil || parent != "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice" {
		t.Errorf("EnsurePod = %q, %v", parent, err)
	}
	if got := *w.cgroups["/kubepods/burstable"].CPUShares; got != 1024 {
		t.Errorf("burstable tier shares = %d, want the new pod's 1024", got)
	}
}

func TestSystemdRunning(t *testing.T) {
	dir := t.TempDir()
	if err := systemdRunning(dir); err != nil {
		t.Errorf("with %s: %v", dir, err)
	}
	err := systemdRunning(filepath.Join(dir, "absent"))
	if err == nil || !strings.Contains(err.Error(), "--cgroup-driver=cgroupfs") {
		t.Errorf("without systemd: %v", err)
	}
}

func TestNewSystemdWithoutSystemd(t *testing.T) {
	if systemdRunning(systemdRuntimeDir) == nil {
		t.Skip("systemd runs here")
	}
	_, err := New(Config{Root: "/", Driver: DriverSystemd, QOS: qosOf})
	if err == nil || !strings.Contains(err.Error(), "systemd") {
		t.Errorf("New with the systemd driver and no systemd: %v", err)
	}
}
