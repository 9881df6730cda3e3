package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// errUnknownFileType is the kubelet's error for a path that is none of the
// types a hostPath volume can ask for.
var errUnknownFileType = errors.New("only recognise file, directory, socket, block device and character device")

// checkHostPath validates a hostPath volume as the kubelet's SetUp does:
// the path must not step back with "..", and must be of the requested type
// (creating a directory or an empty file for the ...OrCreate types).
func checkHostPath(src *v1.HostPathVolumeSource) error {
	if slices.Contains(strings.Split(src.Path, "/"), "..") {
		return fmt.Errorf("invalid HostPath `%s`: must not contain '..'", src.Path)
	}
	pathType := v1.HostPathUnset
	if src.Type != nil {
		pathType = *src.Type
	}
	return checkHostPathType(src.Path, pathType)
}

// checkHostPathType checks (or creates) path for a hostPath type, with the
// kubelet's messages.
func checkHostPathType(path string, pathType v1.HostPathType) error {
	switch pathType {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if !pathExists(path) {
			// MkdirAll succeeds on an existing directory and fails on a
			// file, which is what is wanted.
			return os.MkdirAll(path, 0o755)
		}
		return hostPathTypeMatches(path, v1.HostPathDirectory, "directory")
	case v1.HostPathDirectory:
		return hostPathTypeMatches(path, v1.HostPathDirectory, "directory")
	case v1.HostPathFileOrCreate:
		if !pathExists(path) {
			// Parents are not created, as with the kubelet.
			f, err := os.OpenFile(path, os.O_CREATE, 0o644)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return f.Close()
		}
		return hostPathTypeMatches(path, v1.HostPathFile, "file")
	case v1.HostPathFile:
		return hostPathTypeMatches(path, v1.HostPathFile, "file")
	case v1.HostPathSocket:
		return hostPathTypeMatches(path, v1.HostPathSocket, "socket file")
	case v1.HostPathCharDev:
		return hostPathTypeMatches(path, v1.HostPathCharDev, "character device")
	case v1.HostPathBlockDev:
		return hostPathTypeMatches(path, v1.HostPathBlockDev, "block device")
	default:
		return fmt.Errorf("%s is an invalid volume type", pathType)
	}
}

func hostPathTypeMatches(path string, want v1.HostPathType, wantName string) error {
	got, err := hostFileType(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, wantName, err)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, wantName, got)
	}
	return nil
}

// hostFileType returns what path is, following symlinks as a bind mount
// would.
func hostFileType(path string) (v1.HostPathType, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("path %q does not exist", path)
	}
	if err != nil {
		return "", err
	}
	mode := info.Mode()
	switch {
	case mode.IsDir():
		return v1.HostPathDirectory, nil
	case mode.IsRegular():
		return v1.HostPathFile, nil
	case mode&fs.ModeSocket != 0:
		return v1.HostPathSocket, nil
	case mode&fs.ModeCharDevice != 0:
		return v1.HostPathCharDev, nil
	case mode&fs.ModeDevice != 0:
		return v1.HostPathBlockDev, nil
	}
	return "", errUnknownFileType
}

func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
