package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MachineInfo is what the node reports about the machine it runs on. It is
// read once at start: none of it changes while the agent runs.
type MachineInfo struct {
	MachineID     string
	SystemUUID    string
	BootID        string
	KernelVersion string
	OSImage       string
	// Capacity holds cpu, memory, ephemeral-storage and pods.
	Capacity v1.ResourceList
	// CgroupV2 is true on a unified (cgroup v2) hierarchy; false on v1 or
	// hybrid, where the resource controllers are v1.
	CgroupV2 bool
	// SwapAccounting is true when the memory controller accounts swap, so
	// containers' swap limits can be set.
	SwapAccounting bool
}

// ReadMachineInfo reads the machine's identity and capacity from /proc, /etc
// and /sys. storageDir is the directory whose file system backs
// ephemeral-storage (the agent's root directory); maxPods sets the pods
// capacity. Identity files that are missing leave their field empty, as on
// containers without DMI data.
func ReadMachineInfo(storageDir string, maxPods int64) (MachineInfo, error) {
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return MachineInfo{}, fmt.Errorf("read memory capacity: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(storageDir, &st); err != nil {
		return MachineInfo{}, fmt.Errorf("read ephemeral-storage capacity of %s: %w", storageDir, err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return MachineInfo{}, fmt.Errorf("read kernel version: %w", err)
	}
	return MachineInfo{
		CgroupV2:       exists(cgroupRoot + "/cgroup.controllers"),
		SwapAccounting: exists(cgroupRoot+"/memory/memory.memsw.limit_in_bytes") || exists(cgroupRoot+"/memory.swap.max"),
		MachineID:      readTrimmed("/etc/machine-id"),
		SystemUUID:     readTrimmed("/sys/class/dmi/id/product_uuid"),
		BootID:         readTrimmed("/proc/sys/kernel/random/boot_id"),
		KernelVersion:  unix.ByteSliceToString(uts.Release[:]),
		OSImage:        osImage("/etc/os-release"),
		Capacity: v1.ResourceList{
			v1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			v1.ResourceMemory:           *resource.NewQuantity(mem, resource.BinarySI),
			v1.ResourceEphemeralStorage: *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI),
			v1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
		},
	}, nil
}

// cgroupRoot is where the cgroup hierarchy is mounted, on every Linux
// distribution the agent supports.
const cgroupRoot = "/sys/fs/cgroup"

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %q: %w", s.Text(), err)
			}
			return kb * 1024, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

// osImage returns PRETTY_NAME from os-release, as the kubelet reports it.
func osImage(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "Unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return v
		}
	}
	return "Unknown"
}
