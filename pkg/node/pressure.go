package node

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Readings are the node's resource levels measured for one status update.
// A level that could not be read is left nil, and is then no evidence of
// pressure either way.
type Readings struct {
	// MemoryAvailable is MemAvailable of /proc/meminfo, in bytes.
	MemoryAvailable *int64
	// MemoryCapacity is MemTotal, in bytes, the base of a percentage.
	MemoryCapacity int64
	// NodeFsAvailable and NodeFsCapacity are the bytes available to
	// unprivileged users and the size of --root-dir's file system;
	// NodeFsInodesFree and NodeFsInodes its free and total inodes.
	NodeFsAvailable, NodeFsInodesFree *int64
	NodeFsCapacity, NodeFsInodes      int64
	// PIDsAvailable is PIDMax minus the processes that exist, as the
	// kubelet's pid.available signal.
	PIDsAvailable *int64
	PIDMax        int64
}

// Pressure says which of the node's resources are short.
type Pressure struct {
	Memory, Disk, PID bool
}

// observePressure compares the readings with the hard eviction thresholds,
// as the kubelet's eviction manager does: a signal is under pressure when
// its level is below its threshold. A signal without a threshold (PID, by
// default) or without a reading is never under pressure.
func observePressure(r Readings, thresholds []Threshold) Pressure {
	below := func(signal string, level *int64, capacity int64) bool {
		t := findThreshold(thresholds, signal)
		if t == nil || level == nil {
			return false
		}
		return *level < t.value(*resource.NewQuantity(capacity, resource.BinarySI))
	}
	return Pressure{
		Memory: below(SignalMemoryAvailable, r.MemoryAvailable, r.MemoryCapacity),
		Disk: below(SignalNodeFsAvailable, r.NodeFsAvailable, r.NodeFsCapacity) ||
			below(SignalNodeFsInodesFree, r.NodeFsInodesFree, r.NodeFsInodes),
		PID: below(SignalPIDAvailable, r.PIDsAvailable, r.PIDMax),
	}
}

// pressureMemory keeps, per resource, when pressure was last observed, so
// that a condition stays true for the transition period after the pressure
// ends (the kubelet's --eviction-pressure-transition-period): a node near a
// threshold then does not flap between pressure and none.
type pressureMemory struct {
	memory, disk, pid time.Time
}

// hold records observed at now and returns the pressure to report: that
// observed, or observed less than period ago.
func (m *pressureMemory) hold(observed Pressure, now time.Time, period time.Duration) Pressure {
	step := func(last *time.Time, on bool) bool {
		if on {
			*last = now
			return true
		}
		return !last.IsZero() && now.Sub(*last) < period
	}
	return Pressure{
		Memory: step(&m.memory, observed.Memory),
		Disk:   step(&m.disk, observed.Disk),
		PID:    step(&m.pid, observed.PID),
	}
}

// DefaultPressureTransitionPeriod is the kubelet's
// --eviction-pressure-transition-period default.
const DefaultPressureTransitionPeriod = 5 * time.Minute

// ReadReadings measures the node's memory (/proc/meminfo), the file system
// of rootDir, and its PIDs (in use as sysinfo's process count, out of the
// smaller of kernel.pid_max and kernel.threads-max, as the kubelet). A
// level that cannot be read is left nil and returned in the error.
func ReadReadings(rootDir string) (Readings, error) {
	var r Readings
	var errs []string
	if avail, total, err := memAvailable("/proc/meminfo"); err != nil {
		errs = append(errs, fmt.Sprintf("memory: %v", err))
	} else {
		r.MemoryAvailable, r.MemoryCapacity = &avail, total
	}
	var st unix.Statfs_t
	if err := unix.Statfs(rootDir, &st); err != nil {
		errs = append(errs, fmt.Sprintf("file system of %s: %v", rootDir, err))
	} else {
		avail, free := int64(st.Bavail)*st.Bsize, int64(st.Ffree)
		r.NodeFsAvailable, r.NodeFsCapacity = &avail, int64(st.Blocks)*st.Bsize
		r.NodeFsInodes = int64(st.Files)
		if st.Files > 0 {
			// Some file systems (btrfs) have no inode limit and report 0.
			r.NodeFsInodesFree = &free
		}
	}
	pidMax, err1 := readInt("/proc/sys/kernel/pid_max")
	threadsMax, err2 := readInt("/proc/sys/kernel/threads-max")
	var si unix.Sysinfo_t
	err3 := unix.Sysinfo(&si)
	if err1 != nil || err2 != nil || err3 != nil {
		errs = append(errs, fmt.Sprintf("pids: %v", firstErr(err1, err2, err3)))
	} else {
		r.PIDMax = min(pidMax, threadsMax)
		avail := r.PIDMax - int64(si.Procs)
		r.PIDsAvailable = &avail
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("read node resource levels: %s", strings.Join(errs, "; "))
	}
	return r, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// memAvailable returns MemAvailable and MemTotal of a meminfo file, in bytes.
func memAvailable(path string) (avail, total int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var haveAvail, haveTotal bool
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || (fields[0] != "MemAvailable:" && fields[0] != "MemTotal:") {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %q: %w", s.Text(), err)
		}
		if fields[0] == "MemAvailable:" {
			avail, haveAvail = kb*1024, true
		} else {
			total, haveTotal = kb*1024, true
		}
	}
	if err := s.Err(); err != nil {
		return 0, 0, err
	}
	if !haveAvail || !haveTotal {
		return 0, 0, fmt.Errorf("no MemAvailable or MemTotal in %s", path)
	}
	return avail, total, nil
}
