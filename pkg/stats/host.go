package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Host reads the machine's own counters. The Provider uses it for the node
// and for what CRI does not report (a sandbox's network, volume usage); tests
// give a fake one.
type Host interface {
	// BootTime is when the node started: the node's stats start time.
	BootTime() (time.Time, error)
	// CPUUsage is the CPU time all cores spent busy since boot, in
	// core-nanoseconds.
	CPUUsage() (uint64, error)
	// Memory is the node's memory use.
	Memory() (Memory, error)
	// Interfaces are the network counters of the network namespace of
	// process pid; pid 0 is the agent's own (the node's).
	Interfaces(pid int) ([]Interface, error)
	// FsInfo is the capacity and free space of the file system holding path.
	FsInfo(path string) (FsInfo, error)
	// Processes returns the highest PID the kernel hands out and the
	// number of processes now running.
	Processes() (maxPID, running int64, err error)
	// DiskUsage walks path like du: the bytes its files take on disk and
	// its inodes. A missing path uses nothing.
	DiskUsage(path string) (bytes, inodes uint64, err error)
}

// Memory is the node's memory use in bytes, from /proc/meminfo.
type Memory struct {
	Total, Free, InactiveFile, AnonPages uint64
}

// Interface is one network interface's counters.
type Interface struct {
	Name                                 string
	RxBytes, RxErrors, TxBytes, TxErrors uint64
}

// FsInfo is what statfs tells of a file system.
type FsInfo struct {
	Capacity, Free, Available, Inodes, InodesFree uint64
}

// NewHost returns the Host of this machine, reading procRoot (/proc).
func NewHost(procRoot string) (Host, error) {
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", procRoot, err)
	}
	return procHost{fs: pfs, root: procRoot}, nil
}

type procHost struct {
	fs   procfs.FS
	root string
}

func (h procHost) BootTime() (time.Time, error) {
	st, err := h.fs.Stat()
	if err != nil {
		return time.Time{}, fmt.Errorf("read stat: %w", err)
	}
	return time.Unix(int64(st.BootTime), 0), nil
}

func (h procHost) CPUUsage() (uint64, error) {
	st, err := h.fs.Stat()
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	c := st.CPUTotal
	// Guest time is already counted in user time.
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return uint64(busy * float64(time.Second)), nil
}

func (h procHost) Memory() (Memory, error) {
	mi, err := h.fs.Meminfo()
	if err != nil {
		return Memory{}, fmt.Errorf("read meminfo: %w", err)
	}
	if mi.MemTotalBytes == nil || mi.MemFreeBytes == nil {
		return Memory{}, errors.New("meminfo has no MemTotal or MemFree")
	}
	m := Memory{Total: *mi.MemTotalBytes, Free: *mi.MemFreeBytes}
	if mi.InactiveFileBytes != nil {
		m.InactiveFile = *mi.InactiveFileBytes
	}
	if mi.AnonPagesBytes != nil {
		m.AnonPages = *mi.AnonPagesBytes
	}
	return m, nil
}

func (h procHost) Interfaces(pid int) ([]Interface, error) {
	var nd procfs.NetDev
	var err error
	if pid == 0 {
		nd, err = h.fs.NetDev()
	} else {
		var p procfs.Proc
		if p, err = h.fs.Proc(pid); err == nil {
			nd, err = p.NetDev()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read net/dev of pid %d: %w", pid, err)
	}
	out := make([]Interface, 0, len(nd))
	for _, l := range nd {
		out = append(out, Interface{Name: l.Name, RxBytes: l.RxBytes, RxErrors: l.RxErrors, TxBytes: l.TxBytes, TxErrors: l.TxErrors})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (procHost) FsInfo(path string) (FsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FsInfo{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return FsInfo{Capacity: st.Blocks * bs, Free: st.Bfree * bs, Available: st.Bavail * bs, Inodes: st.Files, InodesFree: st.Ffree}, nil
}

func (h procHost) Processes() (int64, int64, error) {
	b, err := os.ReadFile(filepath.Join(h.root, "sys/kernel/pid_max"))
	if err != nil {
		return 0, 0, fmt.Errorf("read pid_max: %w", err)
	}
	maxPID, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse pid_max: %w", err)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, 0, fmt.Errorf("sysinfo: %w", err)
	}
	return maxPID, int64(si.Procs), nil
}

// DiskUsage counts allocated blocks, not apparent sizes, as du and the
// kubelet's volume metrics do; hard links are counted once. It stays on the
// file system of path itself (which may be a mount, as a tmpfs volume is):
// a mount below it is another volume's, counted there.
func (procHost) DiskUsage(path string) (uint64, uint64, error) {
	var root unix.Stat_t
	if err := unix.Lstat(path, &root); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var bytes, inodes uint64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Files come and go under a running pod: skip, do not fail.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if uint64(st.Dev) != uint64(root.Dev) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		k := inode{uint64(st.Dev), st.Ino}
		if seen[k] {
			return nil
		}
		seen[k] = true
		inodes++
		bytes += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("walk %s: %w", path, err)
	}
	return bytes, inodes, nil
}
