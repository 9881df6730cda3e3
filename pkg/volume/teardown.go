package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// TearDown removes a pod's volumes: it unmounts everything mounted under
// the pod's directory (tmpfs volumes, subPath bind mounts), then removes
// <root>/pods/<uid>. Call it once the pod's containers are gone. It never
// deletes through a mount point: if something stays mounted it returns an
// error and removes nothing, and the next call tries again. A pod without a
// directory is not an error.
func (m *Manager) TearDown(ctx context.Context, podUID types.UID) error {
	logger := klog.FromContext(ctx)
	podDir := m.layout.podDir(podUID)
	defer m.forgetPod(podUID)
	if _, err := os.Lstat(podDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}

	mps, err := m.mounter.MountPoints(podDir)
	if err != nil {
		return fmt.Errorf("list mounts of pod %s: %w", podUID, err)
	}
	var errs []error
	// Children were mounted after their parents; unmount them first.
	for _, mp := range slices.Backward(mps) {
		if err := m.mounter.Unmount(mp, false); err != nil {
			errs = append(errs, err)
			continue
		}
		logger.V(3).Info("Unmounted pod volume", "podUID", podUID, "path", mp)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("unmount volumes of pod %s: %w", podUID, err)
	}
	// Deleting through a leftover mount would delete what it shows (for a
	// subPath of a hostPath volume: the host's files).
	if mps, err = m.mounter.MountPoints(podDir); err != nil {
		return fmt.Errorf("list mounts of pod %s: %w", podUID, err)
	}
	if len(mps) > 0 {
		return fmt.Errorf("pod %s still has mounts under %s: %v", podUID, podDir, mps)
	}
	if err := removeAllOneFilesystem(podDir); err != nil {
		return fmt.Errorf("remove pod directory: %w", err)
	}
	logger.V(2).Info("Removed pod volumes", "podUID", podUID, "path", podDir)
	return nil
}

// CleanupOrphans tears down the directory of every pod under the root
// directory for which inUse answers false: pods deleted while the agent was
// down. inUse must answer true for every pod the agent may still run or
// still has to stop, including those it has not started yet, and when in
// doubt. It goes through all pods and returns their errors together.
func (m *Manager) CleanupOrphans(ctx context.Context, inUse func(types.UID) bool) error {
	entries, err := os.ReadDir(m.layout.podsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list pod directories: %w", err)
	}
	logger := klog.FromContext(ctx)
	var errs []error
	for _, e := range entries {
		uid := types.UID(e.Name())
		if !e.IsDir() || inUse(uid) {
			continue
		}
		logger.Info("Cleaning up volumes of orphaned pod", "podUID", uid)
		if err := m.TearDown(ctx, uid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeAllOneFilesystem is os.RemoveAll that refuses to cross into
// another file system, as the kubelet's pod directory cleanup does: a
// mount point left below dir is an error, not something to empty.
func removeAllOneFilesystem(dir string) error {
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	var remove func(path string) error
	remove = func(path string) error {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Dev != root.Dev {
			return fmt.Errorf("cannot delete directory %s: it is a mount point", path)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if err := remove(filepath.Join(path, e.Name())); err != nil {
					return err
				}
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return remove(dir)
}
