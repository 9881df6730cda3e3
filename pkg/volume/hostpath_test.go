package volume

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name     string
		path     string
		pathType *v1.HostPathType
		wantErr  string
	}{
		{"no type, missing path", missing, nil, ""},
		{"empty type, missing path", missing, ptr(v1.HostPathUnset), ""},
		{"directory", dir, ptr(v1.HostPathDirectory), ""},
		{"directory is a file", file, ptr(v1.HostPathDirectory), "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{"directory missing", missing, ptr(v1.HostPathDirectory), "hostPath type check failed, " + missing + " is not a directory, unable to determine its type: path \"" + missing + "\" does not exist"},
		{"file", file, ptr(v1.HostPathFile), ""},
		{"file is a directory", dir, ptr(v1.HostPathFile), "is not a file, it's a Directory"},
		{"socket", sock, ptr(v1.HostPathSocket), ""},
		{"socket is a file", file, ptr(v1.HostPathSocket), "is not a socket file, it's a File"},
		{"char device", "/dev/null", ptr(v1.HostPathCharDev), ""},
		{"char device is a file", file, ptr(v1.HostPathCharDev), "is not a character device, it's a File"},
		{"block device is a char device", "/dev/null", ptr(v1.HostPathBlockDev), "is not a block device, it's a CharDevice"},
		{"DirectoryOrCreate on a file", file, ptr(v1.HostPathDirectoryOrCreate), "is not a directory, it's a File"},
		{"FileOrCreate on a directory", dir, ptr(v1.HostPathFileOrCreate), "is not a file, it's a Directory"},
		{"invalid type", dir, ptr(v1.HostPathType("Fifo")), "Fifo is an invalid volume type"},
		{"backsteps", dir + "/../etc", nil, "invalid HostPath `" + dir + "/../etc`: must not contain '..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkHostPath(&v1.HostPathVolumeSource{Path: tc.path, Type: tc.pathType})
			if !errContains(err, tc.wantErr) {
				t.Errorf("checkHostPath = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckHostPathCreates(t *testing.T) {
	dir := t.TempDir()
	newDir := filepath.Join(dir, "a", "b")
	if err := checkHostPath(&v1.HostPathVolumeSource{Path: newDir, Type: ptr(v1.HostPathDirectoryOrCreate)}); err != nil {
		t.Fatalf("DirectoryOrCreate: %v", err)
	}
	if info, err := os.Stat(newDir); err != nil || !info.IsDir() {
		t.Errorf("directory not created: %v", err)
	}
	newFile := filepath.Join(dir, "f")
	if err := checkHostPath(&v1.HostPathVolumeSource{Path: newFile, Type: ptr(v1.HostPathFileOrCreate)}); err != nil {
		t.Fatalf("FileOrCreate: %v", err)
	}
	if info, err := os.Stat(newFile); err != nil || !info.Mode().IsRegular() {
		t.Errorf("file not created: %v", err)
	}
	// Like the kubelet, FileOrCreate does not create parents.
	if err := checkHostPath(&v1.HostPathVolumeSource{Path: filepath.Join(dir, "x", "f"), Type: ptr(v1.HostPathFileOrCreate)}); err == nil {
		t.Error("FileOrCreate created missing parents")
	}
}
