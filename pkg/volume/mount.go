package volume

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mounter is the part of the host's mount table the package changes. Tests
// replace it with a fake so that they run without root.
type mounter interface {
	// MountTmpfs mounts a new tmpfs on dir with the given options
	// ("size=1048576", "noswap").
	MountTmpfs(dir string, options []string) error
	// TmpfsMounted reports whether dir is the root of a tmpfs mount.
	TmpfsMounted(dir string) (bool, error)
	// BindMount bind-mounts source on target.
	BindMount(source, target string) error
	// Unmount unmounts target; lazily (MNT_DETACH) when lazy is set.
	Unmount(target string, lazy bool) error
	// MountPoints lists the mount points at or below dir, in mount order
	// (a parent before what is mounted on top of it).
	MountPoints(dir string) ([]string, error)
}

// hostMounter changes the mount table of the agent's mount namespace with
// mount(2) and reads it from /proc/self/mountinfo.
type hostMounter struct{}

func (hostMounter) MountTmpfs(dir string, options []string) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, strings.Join(options, ",")); err != nil {
		return fmt.Errorf("mount tmpfs on %s (options %q): %w", dir, options, err)
	}
	return nil
}

func (hostMounter) TmpfsMounted(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return false, nil
	}
	// A tmpfs root has a device of its own; a plain directory on a node
	// whose root dir already is on tmpfs shares its parent's.
	return isMountPoint(dir)
}

func (hostMounter) BindMount(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s on %s: %w", source, target, err)
	}
	return nil
}

func (hostMounter) Unmount(target string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	if err := unix.Unmount(target, flags); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

func (hostMounter) MountPoints(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	dir = filepath.Clean(dir)
	// The mount table names real paths; the root dir may be given through
	// a symlink. Answer in the caller's terms.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	mps := mountPointsUnder(parseMountInfo(data), real)
	for i, mp := range mps {
		mps[i] = dir + strings.TrimPrefix(mp, real)
	}
	return mps, nil
}

// isMountPoint reports whether something is mounted on dir, by comparing its
// device with its parent's (the kubelet's IsLikelyNotMountPoint; it misses
// bind mounts within one file system, which callers check in the mount
// table instead).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// parseMountInfo returns the mount points listed in a mountinfo file, in
// its order. Lines it cannot read are skipped.
func parseMountInfo(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountInfo(fields[4]))
	}
	return out
}

// unescapeMountInfo decodes the octal escapes (\040 for a space) the kernel
// writes in mountinfo paths.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountPointsUnder keeps the mount points at or below dir, without
// duplicates, in their original order.
func mountPointsUnder(all []string, dir string) []string {
	dir = filepath.Clean(dir)
	seen := map[string]bool{}
	var out []string
	for _, mp := range all {
		if pathWithin(mp, dir) && !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	return out
}

// pathWithin reports whether path is base or lies below it. Both must be
// clean.
func pathWithin(path, base string) bool {
	if path == base {
		return true
	}
	if base == "/" {
		return strings.HasPrefix(path, "/")
	}
	return strings.HasPrefix(path, base+"/")
}

// makeShared makes dir a shared mount, bind-mounting it on itself first
// when it is not a mount point of its own, so mounts made below it (tmpfs,
// subPath binds) propagate into containers asking for HostToContainer or
// Bidirectional propagation. It does nothing when dir already is on a shared
// mount.
func makeShared(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if sharedMount(data, dir) {
		return nil
	}
	// Recursive, so that volumes already mounted below dir (pods of an
	// earlier agent run) stay reachable through the new mount rather than
	// hidden under it.
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s rshared: %w", dir, err)
	}
	return nil
}

// sharedMount reports whether the mount that holds dir (the last mount in
// the table whose mount point contains it) has shared propagation.
func sharedMount(mountinfo []byte, dir string) bool {
	shared := false
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || !pathWithin(dir, unescapeMountInfo(fields[4])) {
			continue
		}
		shared = false
		// Optional fields run from the 7th to the "-" separator.
		for _, f := range fields[6:] {
			if f == "-" {
				break
			}
			if strings.HasPrefix(f, "shared:") {
				shared = true
			}
		}
	}
	return shared
}
