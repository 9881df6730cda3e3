package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// subPaths prepares subPath mounts of one pod's volumes.
type subPaths struct {
	podDir  string
	mounter mounter
}

// subPathError is the kubelet's terse message for a subPath that could not
// be prepared (details could tell a user about the host's file system);
// the detail is kept for the agent's own log through Unwrap.
type subPathError struct {
	msg string
	err error
}

func (e *subPathError) Error() string { return e.msg }
func (e *subPathError) Unwrap() error { return e.err }

// prepare makes subPath of the volume at volPath safe to hand to the
// runtime and returns the path to mount: the subPath bind-mounted at
// volume-subpaths/<volume>/<container>/<index> under the pod directory.
//
// A missing subPath is created as a directory with the volume's mode. The
// subPath is resolved (symlinks included) and must stay within the
// volume; it is then opened component by component without following
// symlinks, and that open file is what gets bind-mounted, so nothing the
// container does to the volume afterwards can redirect the mount.
func (s *subPaths) prepare(volPath, subPath, volName, containerName string, index int) (string, error) {
	full := filepath.Join(volPath, subPath)
	if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
		info, err := os.Stat(volPath)
		if err != nil {
			return "", &subPathError{msg: fmt.Sprintf("failed to create subPath directory for volumeMount %q of container %q", volName, containerName), err: err}
		}
		if err := safeMakeDir(subPath, volPath, info.Mode()); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", &subPathError{msg: fmt.Sprintf("failed to create subPath directory for volumeMount %q of container %q", volName, containerName), err: err}
		}
	}
	target, err := s.bind(volPath, full, subPathTarget(s.podDir, volName, containerName, index))
	if err != nil {
		return "", &subPathError{msg: fmt.Sprintf("failed to prepare subPath for volumeMount %q of container %q", volName, containerName), err: err}
	}
	return target, nil
}

// bind bind-mounts path, which must lie within volPath, on target, reusing
// a mount already there when it shows the same file.
func (s *subPaths) bind(volPath, path, target string) (string, error) {
	realVol, err := filepath.EvalSymlinks(volPath)
	if err != nil {
		return "", fmt.Errorf("resolve symlinks in %q: %w", volPath, err)
	}
	realPath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("resolve symlinks in %q: %w", path, err)
	}
	if !pathWithin(realPath, realVol) {
		return "", fmt.Errorf("subpath %q not within volume path %q", realPath, realVol)
	}
	fd, err := safeOpen(realPath, realVol)
	if err != nil {
		return "", fmt.Errorf("open subpath %v: %w", realPath, err)
	}
	defer unix.Close(fd)

	mps, err := s.mounter.MountPoints(target)
	if err != nil {
		return "", err
	}
	if slices.Contains(mps, target) {
		src, serr := os.Lstat(realPath)
		dst, derr := os.Lstat(target)
		if serr == nil && derr == nil && os.SameFile(src, dst) {
			return target, nil
		}
		// The subPath now names another file (the container replaced it,
		// or a configMap was updated): mount the current one.
		if err := s.mounter.Unmount(target, true); err != nil {
			return "", err
		}
	}

	if err := os.MkdirAll(filepath.Dir(target), subPathTargetPerm); err != nil {
		return "", fmt.Errorf("create directory %s: %w", filepath.Dir(target), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("stat subpath %s: %w", realPath, err)
	}
	// A directory needs a directory to be mounted on; anything else (file,
	// socket, device) an empty file.
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(target, subPathTargetPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create directory %s: %w", target, err)
		}
	} else if err := os.WriteFile(target, nil, 0o640); err != nil {
		return "", fmt.Errorf("create file %s: %w", target, err)
	}
	// /proc/self/fd/N names exactly the file opened above, whatever the
	// path now leads to.
	if err := s.mounter.BindMount("/proc/self/fd/"+strconv.Itoa(fd), target); err != nil {
		return "", err
	}
	return target, nil
}

// safeOpen opens path, which must lie within base and contain no symlinks
// below it, walking one component at a time with O_NOFOLLOW so that no
// component can be swapped for a symlink meanwhile. It returns an O_PATH
// descriptor.
func safeOpen(path, base string) (int, error) {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return -1, err
	}
	parent, err := unix.Open(base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open directory %s: %w", base, err)
	}
	if rel == "." {
		return parent, nil
	}
	current := base
	for seg := range strings.SplitSeq(rel, "/") {
		current = filepath.Join(current, seg)
		if !pathWithin(current, base) {
			unix.Close(parent)
			return -1, fmt.Errorf("path %s is outside of allowed base %s", current, base)
		}
		child, err := unix.Openat(parent, seg, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(parent)
		if err != nil {
			return -1, fmt.Errorf("cannot open %s: %w", current, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(child, &st); err != nil {
			unix.Close(child)
			return -1, fmt.Errorf("error running fstat on %s: %w", current, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(child)
			return -1, fmt.Errorf("unexpected symlink found %s", current)
		}
		parent = child
	}
	return parent, nil
}

// safeMakeDir creates subdir (and its missing parents) with mode perm
// inside base, refusing to create anything outside it even if a component
// is a symlink or is replaced by one meanwhile.
func safeMakeDir(subdir, base string, perm fs.FileMode) error {
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return fmt.Errorf("error resolving symlinks in %s: %w", base, err)
	}
	full := filepath.Join(realBase, subdir)
	if !pathWithin(full, realBase) {
		return fmt.Errorf("path %s is outside of allowed base %s", full, realBase)
	}
	if info, err := os.Stat(full); err == nil {
		if info.IsDir() {
			// It may lie outside through a symlink; bind checks that.
			return nil
		}
		return &os.PathError{Op: "mkdir", Path: full, Err: unix.ENOTDIR}
	}

	existing, toCreate, err := existingPrefix(realBase, full)
	if err != nil {
		return fmt.Errorf("error opening directory %s: %w", full, err)
	}
	realExisting, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return fmt.Errorf("error opening directory %s: %w", existing, err)
	}
	if !pathWithin(realExisting, realBase) {
		return fmt.Errorf("path %s is outside of allowed base %s", realExisting, realBase)
	}
	parent, err := safeOpen(realExisting, realBase)
	if err != nil {
		return fmt.Errorf("cannot open directory %s: %w", existing, err)
	}
	defer func() { unix.Close(parent) }()

	kernelPerm := uint32(perm.Perm())
	if perm&fs.ModeSetgid != 0 {
		kernelPerm |= unix.S_ISGID
	}
	if perm&fs.ModeSetuid != 0 {
		kernelPerm |= unix.S_ISUID
	}
	if perm&fs.ModeSticky != 0 {
		kernelPerm |= unix.S_ISVTX
	}
	current := realExisting
	for _, dir := range toCreate {
		current = filepath.Join(current, dir)
		if err := unix.Mkdirat(parent, dir, kernelPerm); err != nil {
			return fmt.Errorf("cannot create directory %s: %w", current, err)
		}
		// O_NOFOLLOW: the new directory cannot have become a symlink.
		child, err := unix.Openat(parent, dir, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", current, err)
		}
		unix.Close(parent)
		parent = child
		// mkdirat's mode went through the umask.
		if err := unix.Fchmod(parent, kernelPerm); err != nil {
			return fmt.Errorf("chmod %q failed: %w", current, err)
		}
	}
	return nil
}

// existingPrefix splits path (within base) into its longest existing
// prefix and the components after it.
func existingPrefix(base, path string) (string, []string, error) {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return base, nil, err
	}
	dirs := strings.Split(rel, "/")
	current := base
	for i, d := range dirs {
		next := filepath.Join(current, d)
		if _, err := os.Lstat(next); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return current, dirs[i:], nil
			}
			return base, nil, err
		}
		current = next
	}
	return path, nil, nil
}
