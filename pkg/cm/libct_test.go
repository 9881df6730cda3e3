package cm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"k8s.io/utils/ptr"
)

// TestLibctCgroupfs writes real cgroups with the cgroupfs driver under a
// root of its own, as root only, and removes them.
func TestLibctCgroupfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write cgroups")
	}
	w := newLibctCgroups(DriverCgroupfs)
	root := ParseCgroupfs(fmt.Sprintf("/ea-unit-%d", os.Getpid()))
	pod := root.Child("kubepods").Child("burstable").Child("podabc")
	t.Cleanup(func() {
		for _, n := range []CgroupName{pod, root.Child("kubepods").Child("burstable"), root.Child("kubepods"), root} {
			_ = w.Destroy(n)
		}
	})
	if w.Exists(root) {
		t.Fatalf("%s exists before the test", root.ToCgroupfs())
	}
	rc := ResourceConfig{CPUShares: ptr.To[uint64](512), CPUQuota: ptr.To[int64](50000), CPUPeriod: ptr.To[uint64](100000),
		Memory: ptr.To[int64](64 << 20), PidsLimit: ptr.To[int64](99)}
	if err := w.Apply(pod, rc); err != nil {
		if strings.Contains(err.Error(), "read-only") {
			t.Skipf("cgroups not writable here: %v", err)
		}
		t.Fatal(err)
	}
	if !w.Exists(pod) {
		t.Fatal("pod cgroup does not exist after Apply")
	}
	read := func(controller, file string) string {
		t.Helper()
		var p string
		if w.v2 {
			p = filepath.Join("/sys/fs/cgroup", pod.ToCgroupfs(), file)
		} else {
			mnt, err := cgroups.FindCgroupMountpoint("", controller)
			if err != nil {
				t.Skipf("no %s controller: %v", controller, err)
			}
			p = filepath.Join(mnt, pod.ToCgroupfs(), file)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if w.v2 {
		if got := read("", "memory.max"); got != "67108864" {
			t.Errorf("memory.max = %s", got)
		}
		if got := read("", "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %s", got)
		}
	} else {
		if got := read("memory", "memory.limit_in_bytes"); got != "67108864" {
			t.Errorf("memory.limit_in_bytes = %s", got)
		}
		if got := read("cpu", "cpu.shares"); got != "512" {
			t.Errorf("cpu.shares = %s", got)
		}
		if got := read("cpu", "cpu.cfs_quota_us"); got != "50000" {
			t.Errorf("cpu.cfs_quota_us = %s", got)
		}
	}
	if got := read("pids", "pids.max"); got != "99" {
		t.Errorf("pids.max = %s", got)
	}
	kids, err := w.Children(pod[:len(pod)-1])
	if err != nil || len(kids) != 1 || kids[0] != "podabc" {
		t.Errorf("Children = %v, %v", kids, err)
	}
	if err := w.Destroy(pod); err != nil {
		t.Fatal(err)
	}
	if w.Exists(pod) {
		t.Error("pod cgroup exists after Destroy")
	}
	if err := w.Destroy(pod); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}
