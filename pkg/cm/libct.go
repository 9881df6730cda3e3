package cm

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// libctCgroups writes cgroups through github.com/opencontainers/cgroups,
// as the kubelet's cgroup manager does, for either driver and either
// cgroup version.
type libctCgroups struct {
	driver Driver
	// v2 is true on a unified cgroup v2 hierarchy.
	v2 bool
}

// newLibctCgroups returns the cgroup writer for driver on this machine.
func newLibctCgroups(driver Driver) *libctCgroups {
	return &libctCgroups{driver: driver, v2: cgroups.IsCgroup2UnifiedMode()}
}

// config is the library's description of cgroup name with rc: for
// cgroupfs a path, for systemd a slice and its parent slice.
func (l *libctCgroups) config(name CgroupName, rc ResourceConfig) *cgroups.Cgroup {
	c := &cgroups.Cgroup{Resources: l.resources(rc)}
	if l.driver != DriverSystemd {
		c.Path = name.ToCgroupfs()
		return c
	}
	c.Systemd = true
	dir, base := path.Split(name.ToSystemd())
	c.Parent, c.Name = "-.slice", base
	if dir != "/" {
		c.Parent = path.Base(dir)
	}
	return c
}

func (l *libctCgroups) resources(rc ResourceConfig) *cgroups.Resources {
	// Device rules belong to containers; a pod cgroup must not restrict
	// them (the library would deny all otherwise).
	r := &cgroups.Resources{SkipDevices: true}
	if rc.CPUShares != nil {
		if l.v2 {
			r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*rc.CPUShares)
		} else {
			r.CpuShares = *rc.CPUShares
		}
	}
	if rc.CPUQuota != nil {
		r.CpuQuota = *rc.CPUQuota
	}
	if rc.CPUPeriod != nil {
		r.CpuPeriod = *rc.CPUPeriod
	}
	if rc.Memory != nil {
		r.Memory = *rc.Memory
	}
	if rc.PidsLimit != nil {
		p := *rc.PidsLimit
		r.PidsLimit = &p
	}
	return r
}

func (l *libctCgroups) manager(name CgroupName, rc ResourceConfig) (cgroups.Manager, error) {
	m, err := manager.New(l.config(name, rc))
	if err != nil {
		return nil, fmt.Errorf("cgroup manager for %s: %w", name.ToCgroupfs(), err)
	}
	return m, nil
}

// Apply creates the cgroup if needed and writes rc to it.
func (l *libctCgroups) Apply(name CgroupName, rc ResourceConfig) error {
	c := l.config(name, rc)
	m, err := manager.New(c)
	if err != nil {
		return fmt.Errorf("cgroup manager for %s: %w", name.ToCgroupfs(), err)
	}
	// Apply with pid -1 creates the cgroup (in each v1 hierarchy) and
	// moves no process into it; Set then writes the limits, after the
	// creation as runc does, so the CPU quota lands.
	if err := m.Apply(-1); err != nil {
		return fmt.Errorf("create cgroup %s: %w", name.ToCgroupfs(), err)
	}
	if err := m.Set(c.Resources); err != nil {
		return fmt.Errorf("set cgroup %s: %w", name.ToCgroupfs(), err)
	}
	return nil
}

// Exists tells whether the cgroup exists (in every v1 hierarchy of the
// controllers pods need).
func (l *libctCgroups) Exists(name CgroupName) bool {
	m, err := l.manager(name, ResourceConfig{})
	if err != nil {
		return false
	}
	paths := m.GetPaths()
	if len(paths) == 0 {
		return false
	}
	for sub, p := range paths {
		if !l.v2 && !podControllers[sub] {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// podControllers are the cgroup v1 controllers pod cgroups are written in.
var podControllers = map[string]bool{"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "pids": true}

// Destroy removes the cgroup, which must hold no process; a missing
// cgroup is no error.
func (l *libctCgroups) Destroy(name CgroupName) error {
	m, err := l.manager(name, ResourceConfig{})
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", name.ToCgroupfs(), err)
	}
	return nil
}

// Children lists the names of the cgroup's child directories, in any of
// its v1 hierarchies.
func (l *libctCgroups) Children(name CgroupName) ([]string, error) {
	m, err := l.manager(name, ResourceConfig{})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var errs []error
	for _, p := range m.GetPaths() {
		entries, err := os.ReadDir(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}
