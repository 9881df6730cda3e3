package stats

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcHost(t *testing.T) {
	h, err := NewHost("/proc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 64*1024), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hard link is the same inode: counted once.
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	bytes, inodes, err := h.DiskUsage(dir)
	if err != nil || inodes != 2 || bytes < 64*1024 || bytes > 128*1024 {
		t.Errorf("DiskUsage = %d bytes, %d inodes, %v; want the directory and one 64KiB file", bytes, inodes, err)
	}
	if b, i, err := h.DiskUsage(filepath.Join(dir, "missing")); err != nil || b != 0 || i != 0 {
		t.Errorf("DiskUsage of a missing path = %d, %d, %v; want nothing used", b, i, err)
	}
	if usage, err := h.CPUUsage(); err != nil || usage == 0 {
		t.Errorf("CPUUsage = %d, %v", usage, err)
	}
	if m, err := h.Memory(); err != nil || m.Total == 0 || m.Free > m.Total {
		t.Errorf("Memory = %+v, %v", m, err)
	}
	if ifs, err := h.Interfaces(os.Getpid()); err != nil || len(ifs) == 0 {
		t.Errorf("Interfaces of this process = %v, %v", ifs, err)
	}
	if fs, err := h.FsInfo(dir); err != nil || fs.Capacity == 0 || fs.Available > fs.Capacity {
		t.Errorf("FsInfo = %+v, %v", fs, err)
	}
	if maxPID, running, err := h.Processes(); err != nil || maxPID == 0 || running == 0 {
		t.Errorf("Processes = %d, %d, %v", maxPID, running, err)
	}
}
