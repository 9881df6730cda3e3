package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

func i64(v int64) *int64 { return &v }

func TestObservePressure(t *testing.T) {
	def, err := ParseThresholds(DefaultEvictionHard + ",pid.available<10%")
	if err != nil {
		t.Fatal(err)
	}
	const gi = 1 << 30
	plenty := Readings{
		MemoryAvailable: i64(4 * gi), MemoryCapacity: 8 * gi,
		NodeFsAvailable: i64(50 * gi), NodeFsCapacity: 100 * gi,
		NodeFsInodesFree: i64(900), NodeFsInodes: 1000,
		PIDsAvailable: i64(30000), PIDMax: 32768,
	}
	with := func(f func(*Readings)) Readings { r := plenty; f(&r); return r }
	for _, tc := range []struct {
		name       string
		r          Readings
		thresholds []Threshold
		want       Pressure
	}{
		{"plenty", plenty, def, Pressure{}},
		{"memory below 100Mi", with(func(r *Readings) { r.MemoryAvailable = i64(99 << 20) }), def, Pressure{Memory: true}},
		{"memory at the threshold", with(func(r *Readings) { r.MemoryAvailable = i64(100 << 20) }), def, Pressure{}},
		{"nodefs below 10%", with(func(r *Readings) { r.NodeFsAvailable = i64(9 * gi) }), def, Pressure{Disk: true}},
		{"nodefs inodes below 5%", with(func(r *Readings) { r.NodeFsInodesFree = i64(49) }), def, Pressure{Disk: true}},
		{"pids below 10%", with(func(r *Readings) { r.PIDsAvailable = i64(3000) }), def, Pressure{PID: true}},
		{"all short", Readings{MemoryAvailable: i64(0), MemoryCapacity: 8 * gi, NodeFsAvailable: i64(0), NodeFsCapacity: 100 * gi,
			PIDsAvailable: i64(0), PIDMax: 32768}, def, Pressure{Memory: true, Disk: true, PID: true}},
		{"no thresholds, no pressure", Readings{MemoryAvailable: i64(0), NodeFsAvailable: i64(0), PIDsAvailable: i64(0)}, nil, Pressure{}},
		{"unread levels show no pressure", Readings{}, def, Pressure{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := observePressure(tc.r, tc.thresholds); got != tc.want {
				t.Errorf("observePressure = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPressureHeldForTransitionPeriod(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var m pressureMemory
	for _, step := range []struct {
		at       time.Duration
		observed Pressure
		want     Pressure
	}{
		{0, Pressure{}, Pressure{}},
		{time.Second, Pressure{Memory: true}, Pressure{Memory: true}},
		{2 * time.Second, Pressure{}, Pressure{Memory: true}},
		{time.Second + 5*time.Minute - 1, Pressure{Disk: true}, Pressure{Memory: true, Disk: true}},
		{time.Second + 5*time.Minute, Pressure{}, Pressure{Disk: true}},
		{time.Hour, Pressure{}, Pressure{}},
	} {
		if got := m.hold(step.observed, t0.Add(step.at), 5*time.Minute); got != step.want {
			t.Errorf("at %s observed %+v: reported %+v, want %+v", step.at, step.observed, got, step.want)
		}
	}
}

func TestPressureConditions(t *testing.T) {
	for _, tc := range []struct {
		p           Pressure
		typ         v1.NodeConditionType
		wantStatus  v1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{Pressure{}, v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{Pressure{Memory: true}, v1.NodeMemoryPressure, v1.ConditionTrue, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"},
		{Pressure{}, v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{Pressure{Disk: true}, v1.NodeDiskPressure, v1.ConditionTrue, "KubeletHasDiskPressure", "kubelet has disk pressure"},
		{Pressure{}, v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
		{Pressure{PID: true}, v1.NodePIDPressure, v1.ConditionTrue, "KubeletHasInsufficientPID", "kubelet has insufficient PID available"},
	} {
		c := findCondition(desiredConditions(RuntimeHealth{Status: runtimeStatus(true, true)}, tc.p), tc.typ)
		if c == nil || c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.Message != tc.wantMessage {
			t.Errorf("%s with %+v = %+v, want %s/%s/%q", tc.typ, tc.p, c, tc.wantStatus, tc.wantReason, tc.wantMessage)
		}
	}
}

func TestSyncStatusReportsMeasuredPressure(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	cfg := testConfig()
	cfg.EvictionHard, _ = ParseThresholds(DefaultEvictionHard)
	cfg.PressureTransitionPeriod = time.Minute
	clk := clocktesting.NewFakeClock(time.Now())
	c := NewController(cfg, client, &fakeRuntime{status: runtimeStatus(true, true)}, &fakeImages{}, testMachine, clk)
	reading := Readings{MemoryAvailable: i64(1 << 30), MemoryCapacity: 8 << 30}
	c.read = func() (Readings, error) { return reading, nil }
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	memoryPressure := func() *v1.NodeCondition {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return findCondition(n.Status.Conditions, v1.NodeMemoryPressure)
	}
	if mp := memoryPressure(); mp.Status != v1.ConditionFalse {
		t.Errorf("MemoryPressure with 1Gi available = %+v", mp)
	}
	reading.MemoryAvailable = i64(50 << 20)
	for _, step := range []struct {
		after time.Duration
		want  v1.ConditionStatus
	}{
		{time.Second, v1.ConditionTrue},
		{time.Second, v1.ConditionTrue},
		{time.Minute, v1.ConditionFalse},
	} {
		clk.Step(step.after)
		c.observeRuntime(ctx)
		if err := c.syncStatus(ctx); err != nil {
			t.Fatal(err)
		}
		if mp := memoryPressure(); mp.Status != step.want {
			t.Errorf("MemoryPressure %s later = %s/%s, want %s", step.after, mp.Status, mp.Reason, step.want)
		}
		reading.MemoryAvailable = i64(1 << 30)
	}
}

func TestReadReadings(t *testing.T) {
	r, err := ReadReadings(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r.MemoryAvailable == nil || *r.MemoryAvailable <= 0 || *r.MemoryAvailable > r.MemoryCapacity {
		t.Errorf("memory available %v of %d", r.MemoryAvailable, r.MemoryCapacity)
	}
	if r.NodeFsAvailable == nil || *r.NodeFsAvailable > r.NodeFsCapacity || r.NodeFsCapacity <= 0 {
		t.Errorf("nodefs available %v of %d", r.NodeFsAvailable, r.NodeFsCapacity)
	}
	if r.PIDsAvailable == nil || *r.PIDsAvailable <= 0 || *r.PIDsAvailable >= r.PIDMax {
		t.Errorf("pids available %v of %d", r.PIDsAvailable, r.PIDMax)
	}
	if _, err := ReadReadings(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing root dir")
	}
}

func TestMemAvailable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content      string
		wantAvail, wantCap int64
		wantErr            bool
	}{
		{"ok", "MemTotal:       8000 kB\nMemFree:   100 kB\nMemAvailable:    2000 kB\n", 2000 << 10, 8000 << 10, false},
		{"no MemAvailable (kernel < 3.14)", "MemTotal:       8000 kB\n", 0, 0, true},
		{"garbage", "MemTotal: x kB\nMemAvailable: 1 kB\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			avail, capacity, err := memAvailable(p)
			if (err != nil) != tc.wantErr || avail != tc.wantAvail || capacity != tc.wantCap {
				t.Errorf("memAvailable = %d, %d, %v; want %d, %d, error %v", avail, capacity, err, tc.wantAvail, tc.wantCap, tc.wantErr)
			}
		})
	}
}
