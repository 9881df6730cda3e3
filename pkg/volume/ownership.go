package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
)

// Permission bits the kubelet adds for fsGroup: group read-write on
// writable volumes, group read on read-only ones, and group traverse plus
// setgid on directories so new files inherit the group.
const (
	fsGroupRWMask   fs.FileMode = 0o660
	fsGroupROMask   fs.FileMode = 0o440
	fsGroupExecMask fs.FileMode = 0o110
)

// fsGroupMode returns the mode the kubelet gives a file or directory of
// mode m in a volume owned by an fsGroup. Symlinks keep theirs: chmod would
// change their target, overriding the mode the volume asked for.
func fsGroupMode(m fs.FileMode, readOnly bool) fs.FileMode {
	if m&fs.ModeSymlink != 0 {
		return m
	}
	mask := fsGroupRWMask
	if readOnly {
		mask = fsGroupROMask
	}
	if m.IsDir() {
		mask |= fsGroupExecMask | fs.ModeSetgid
	}
	return m | mask
}

// applyFSGroup gives everything under dir to group fsGroup and the group
// the access fsGroupMode describes, children before their directory as the
// kubelet's walk does. Like the kubelet, it logs a chown or chmod that fails
// and goes on; only failing to read a directory is an error. It does nothing
// when fsGroup is nil.
func applyFSGroup(logger klog.Logger, dir string, fsGroup *int64, readOnly bool) error {
	if fsGroup == nil {
		return nil
	}
	gid := int(*fsGroup)
	var walk func(path string, info fs.FileInfo) error
	walk = func(path string, info fs.FileInfo) error {
		if info.IsDir() {
			entries, err := os.ReadDir(path)
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			for _, e := range entries {
				child := filepath.Join(path, e.Name())
				ci, err := os.Lstat(child)
				if err != nil {
					return fmt.Errorf("stat %s: %w", child, err)
				}
				if err := walk(child, ci); err != nil {
					return err
				}
			}
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			logger.Error(err, "Failed to change the group of a volume file", "path", path, "fsGroup", gid)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if err := os.Chmod(path, fsGroupMode(info.Mode(), readOnly)); err != nil {
				logger.Error(err, "Failed to change the mode of a volume file", "path", path)
			}
		}
		return nil
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	return walk(dir, info)
}
