package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	// timestampFormat names the hidden directories holding one version of
	// a volume's files, as the kubelet's ("..2026_01_02_15_04_05.123456789").
	timestampFormat = "..2006_01_02_15_04_05."
	maxFileNameLen  = 255
	maxPathLen      = 4096
)

// fileProjection is one file of a content volume.
type fileProjection struct {
	Data []byte
	Mode int32
	// FsUser, when set, owns the file (service account tokens of pods
	// whose containers all run as one user).
	FsUser *int64
}

// atomicWriter projects a set of files into a directory so that a reader
// sees either the whole previous set or the whole new one. It reserves the
// names starting with "..". It does no locking: calls for one directory
// must not overlap.
type atomicWriter struct {
	dir    string
	logger klog.Logger
	now    func() time.Time
}

// write makes dir hold exactly payload. It returns whether anything was
// written. setPerms, when not nil, runs on a new version before it is
// published.
//
// The steps are the kubelet's: write the files into a new timestamped
// directory, point a new "..data_tmp" symlink at it, rename that over
// "..data" (rename is atomic), create the top-level user-visible symlinks
// through "..data" that are missing, remove those no longer in the payload,
// then remove the previous timestamped directory.
func (w *atomicWriter) write(payload map[string]fileProjection, setPerms func() error) (bool, error) {
	clean, err := validatePayload(payload)
	if err != nil {
		return false, err
	}

	dataDir := filepath.Join(w.dir, dataDirName)
	oldTs, err := os.Readlink(dataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read data directory link: %w", err)
	}

	var stale []string
	needWrite := true
	if oldTs != "" {
		oldTsPath := filepath.Join(w.dir, oldTs)
		if stale, err = pathsToRemove(clean, oldTsPath); err != nil {
			return false, fmt.Errorf("find files to remove: %w", err)
		}
		changed, err := payloadChanged(clean, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("compare payload with %s: %w", oldTsPath, err)
		}
		needWrite = changed || len(stale) > 0
	}

	if needWrite {
		if err := w.publish(clean, setPerms); err != nil {
			return false, err
		}
	}

	// The visible links are (re)created even when nothing was written: a
	// crash between the rename and this step must heal on the next call.
	if err := w.createVisibleLinks(clean); err != nil {
		return false, fmt.Errorf("create visible links: %w", err)
	}
	if !needWrite {
		return false, nil
	}
	var errs []error
	for _, p := range stale {
		if strings.Contains(p, "/") {
			// Only the top level holds links; deeper paths went with the
			// old timestamped directory.
			continue
		}
		if err := os.Remove(filepath.Join(w.dir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if oldTs != "" {
		if err := os.RemoveAll(filepath.Join(w.dir, oldTs)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return true, fmt.Errorf("remove previous version: %w", err)
	}
	return true, nil
}

// publish writes payload into a new timestamped directory and swaps
// "..data" to it.
func (w *atomicWriter) publish(payload map[string]fileProjection, setPerms func() error) error {
	tsDir, err := os.MkdirTemp(w.dir, w.now().UTC().Format(timestampFormat))
	if err != nil {
		return fmt.Errorf("create timestamped directory: %w", err)
	}
	published := false
	defer func() {
		if !published {
			if err := os.RemoveAll(tsDir); err != nil {
				w.logger.Error(err, "Failed to remove unpublished volume data", "path", tsDir)
			}
		}
	}()
	// Group and others must be able to traverse it whatever the umask.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", tsDir, err)
	}
	if err := writePayload(payload, tsDir); err != nil {
		return err
	}
	if setPerms != nil {
		if err := setPerms(); err != nil {
			return fmt.Errorf("set ownership: %w", err)
		}
	}
	newLink := filepath.Join(w.dir, newDataDirName)
	_ = os.Remove(newLink) // left by a crash between symlink and rename
	if err := os.Symlink(filepath.Base(tsDir), newLink); err != nil {
		return fmt.Errorf("create data link: %w", err)
	}
	if err := os.Rename(newLink, filepath.Join(w.dir, dataDirName)); err != nil {
		_ = os.Remove(newLink)
		return fmt.Errorf("swap data link: %w", err)
	}
	published = true
	w.logger.V(4).Info("Published new volume data", "path", w.dir, "dataDir", filepath.Base(tsDir))
	return nil
}

// writePayload writes each file with exactly its mode, whatever the umask.
func writePayload(payload map[string]fileProjection, dir string) error {
	for p, f := range payload {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", p, err)
		}
		mode := fs.FileMode(f.Mode) & fs.ModePerm
		if err := os.WriteFile(full, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
		if f.FsUser != nil {
			if err := os.Lchown(full, int(*f.FsUser), -1); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	return nil
}

// createVisibleLinks links each payload path's first element through
// "..data" ("a" → "..data/a" for both "a" and "a/b").
func (w *atomicWriter) createVisibleLinks(payload map[string]fileProjection) error {
	for p, f := range payload {
		top, _, _ := strings.Cut(p, "/")
		link := filepath.Join(w.dir, top)
		// Only a missing name is linked; anything else there (a link, or
		// a nested mount point directory) is left alone, as the kubelet
		// does.
		if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil {
			return err
		}
		if f.FsUser != nil {
			if err := os.Lchown(link, int(*f.FsUser), -1); err != nil {
				return fmt.Errorf("chown %s: %w", link, err)
			}
		}
	}
	return nil
}

// validatePayload returns payload with cleaned paths, or an error for the
// first path that is not allowed.
func validatePayload(payload map[string]fileProjection) (map[string]fileProjection, error) {
	clean := make(map[string]fileProjection, len(payload))
	for p, f := range payload {
		if err := validatePayloadPath(p); err != nil {
			return nil, err
		}
		clean[filepath.Clean(p)] = f
	}
	return clean, nil
}

// validatePayloadPath rejects what could escape the volume or collide with
// the writer's own names, with the kubelet's messages.
func validatePayloadPath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if path.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > maxPathLen {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLen)
	}
	items := strings.Split(p, "/")
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(item) > maxFileNameLen {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLen)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// payloadChanged reports whether any payload file is missing from tsDir or
// differs from it.
func payloadChanged(payload map[string]fileProjection, tsDir string) (bool, error) {
	for p, f := range payload {
		onDisk, err := os.ReadFile(filepath.Join(tsDir, p))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(onDisk, f.Data) {
			return true, nil
		}
	}
	return false, nil
}

// pathsToRemove lists the paths in tsDir (relative to it) that neither are
// in payload nor lead to something in it.
func pathsToRemove(payload map[string]fileProjection, tsDir string) ([]string, error) {
	keep := map[string]bool{}
	for p := range payload {
		for q := p; q != "." && q != "/"; q = filepath.Dir(q) {
			keep[q] = true
		}
	}
	var out []string
	err := filepath.WalkDir(tsDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(tsDir, p)
		if err != nil || rel == "." {
			return err
		}
		if !keep[rel] {
			out = append(out, rel)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return out, err
}
