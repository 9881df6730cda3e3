package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
)

// emptyDirSpec says how to prepare a directory the kubelet's emptyDir
// plugin would prepare: a plain emptyDir volume, or the directory a content
// volume (configMap on disk; secret, downwardAPI, projected on tmpfs) is
// written into.
type emptyDirSpec struct {
	pod       *v1.Pod
	volName   string
	dir       string
	medium    v1.StorageMedium
	sizeLimit *resource.Quantity
	fsGroup   *int64
}

// setUpEmptyDir prepares spec.dir once: a 0777 directory, for medium Memory
// with a tmpfs on it, with fsGroup ownership; then it writes the ready
// marker. Later calls see the marker (and, for Memory, the tmpfs) and leave
// the directory alone, so what containers changed in it stays.
func (m *Manager) setUpEmptyDir(ctx context.Context, spec emptyDirSpec) error {
	logger := klog.FromContext(ctx)
	ready := m.layout.readyFile(spec.pod.UID, spec.volName)
	if _, err := os.Stat(ready); err == nil {
		if _, err := os.Stat(spec.dir); err != nil {
			// Someone removed the volume; make it again.
			logger.Info("Volume directory is gone though marked ready, recreating it", "pod", klog.KObj(spec.pod), "volume", spec.volName, "path", spec.dir)
		} else if spec.medium != v1.StorageMediumMemory {
			return nil
		} else if mounted, err := m.mounter.TmpfsMounted(spec.dir); err != nil {
			return err
		} else if mounted {
			return nil
		}
		// Memory without its tmpfs: after a reboot the marker is still on
		// disk but the tmpfs is gone.
	}

	var err error
	switch spec.medium {
	case v1.StorageMediumDefault:
		err = makeEmptyDir(spec.dir)
	case v1.StorageMediumMemory:
		err = m.setUpTmpfs(ctx, spec)
	default:
		return mediumError(spec.medium)
	}
	// The kubelet applies fsGroup even when the mount failed, and only logs
	// what goes wrong; a later sync retries the rest.
	if fsErr := applyFSGroup(logger, spec.dir, spec.fsGroup, false); fsErr != nil {
		logger.Error(fsErr, "Failed to apply fsGroup to volume", "pod", klog.KObj(spec.pod), "volume", spec.volName)
	}
	if err != nil {
		return err
	}
	return markReady(ready)
}

// mediumError explains why an emptyDir medium cannot be set up: huge pages
// (which need hugetlbfs and the pod's huge page requests) are not supported
// here; anything else is unknown, worded as the kubelet's.
func mediumError(medium v1.StorageMedium) error {
	if medium == v1.StorageMediumHugePages || strings.HasPrefix(string(medium), string(v1.StorageMediumHugePagesPrefix)) {
		return fmt.Errorf("%w: emptyDir medium %s", ErrUnsupported, medium)
	}
	return fmt.Errorf("unknown storage medium %q", medium)
}

// makeEmptyDir creates dir with mode 0777 whatever the umask.
func makeEmptyDir(dir string) error {
	if err := os.MkdirAll(dir, emptyDirPerm); err != nil {
		return err
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if info.Mode().Perm() != emptyDirPerm {
		if err := os.Chmod(dir, emptyDirPerm); err != nil {
			return err
		}
	}
	return nil
}

// setUpTmpfs mounts a tmpfs on spec.dir unless one is there already.
func (m *Manager) setUpTmpfs(ctx context.Context, spec emptyDirSpec) error {
	if err := makeEmptyDir(spec.dir); err != nil {
		return err
	}
	mounted, err := m.mounter.TmpfsMounted(spec.dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	var nodeMemory *resource.Quantity
	if alloc, err := m.nodeAllocatable(); err == nil {
		if q, ok := alloc[v1.ResourceMemory]; ok {
			nodeMemory = &q
		}
	}
	var opts []string
	if size := tmpfsSize(nodeMemory, spec.pod, spec.sizeLimit); size > 0 {
		opts = append(opts, "size="+strconv.FormatInt(size, 10))
	}
	klog.FromContext(ctx).V(3).Info("Mounting tmpfs for volume", "pod", klog.KObj(spec.pod), "volume", spec.volName, "options", opts)
	// Like the kubelet, keep tmpfs pages out of swap where the kernel
	// (6.4+) allows it.
	if !m.noSwapUnsupported.Load() {
		err := m.mounter.MountTmpfs(spec.dir, append(opts, "noswap"))
		if err == nil || !errors.Is(err, unix.EINVAL) {
			return err
		}
		m.noSwapUnsupported.Store(true)
	}
	return m.mounter.MountTmpfs(spec.dir, opts)
}

// markReady writes the ready marker of an emptyDir, as the kubelet's
// SetReady does.
func markReady(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), readyDirPerm); err != nil {
		return fmt.Errorf("create ready marker directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, readyFilePerm)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create ready marker: %w", err)
	}
	return f.Close()
}
