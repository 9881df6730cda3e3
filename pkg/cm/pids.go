package cm

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/cgroups"
)

// LimitProcessPids caps the processes of the cgroup that process pid runs
// in (a container's init process: its container's cgroup) at limit, by
// writing that cgroup's pids.max, on either cgroup version. It serves caps
// that CRI cannot carry: LinuxContainerResources has no pids limit, and
// its unified map is refused on cgroup v1.
func LimitProcessPids(pid int, limit int64) error {
	paths, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("read the cgroups of process %d: %w", pid, err)
	}
	var dir string
	if cgroups.IsCgroup2UnifiedMode() {
		dir = filepath.Join("/sys/fs/cgroup", paths[""])
	} else {
		p, ok := paths["pids"]
		if !ok {
			return fmt.Errorf("process %d is in no pids cgroup", pid)
		}
		mnt, err := cgroups.FindCgroupMountpoint("", "pids")
		if err != nil {
			return fmt.Errorf("find the pids cgroup hierarchy: %w", err)
		}
		dir = filepath.Join(mnt, p)
	}
	if err := cgroups.WriteFile(dir, "pids.max", strconv.FormatInt(limit, 10)); err != nil {
		return fmt.Errorf("limit the processes of %s: %w", dir, err)
	}
	return nil
}
