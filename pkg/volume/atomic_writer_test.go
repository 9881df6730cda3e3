package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

func newTestWriter(t *testing.T) *atomicWriter {
	return &atomicWriter{dir: t.TempDir(), logger: klog.Background(), now: time.Now}
}

func TestAtomicWriterLayout(t *testing.T) {
	w := newTestWriter(t)
	written, err := w.write(map[string]fileProjection{
		"config.yaml": {Data: []byte("a: 1"), Mode: 0o644},
		"sub/key":     {Data: []byte("secret"), Mode: 0o400},
	}, nil)
	if err != nil || !written {
		t.Fatalf("write = %v, %v; want true, nil", written, err)
	}
	ts, err := os.Readlink(filepath.Join(w.dir, dataDirName))
	if err != nil {
		t.Fatalf("..data is not a symlink: %v", err)
	}
	if !strings.HasPrefix(ts, "..") || strings.Contains(ts, "/") {
		t.Errorf("..data -> %q, want a hidden sibling directory", ts)
	}
	for name, want := range map[string]string{"config.yaml": "..data/config.yaml", "sub": "..data/sub"} {
		if got, err := os.Readlink(filepath.Join(w.dir, name)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, want)
		}
	}
	if got := readVolumeFile(t, filepath.Join(w.dir, "sub/key")); got != "secret" {
		t.Errorf("sub/key = %q", got)
	}
	for name, want := range map[string]os.FileMode{"config.yaml": 0o644, "sub/key": 0o400} {
		info, err := os.Stat(filepath.Join(w.dir, name))
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("mode of %s = %v (%v), want %v", name, info.Mode().Perm(), err, want)
		}
	}
	info, _ := os.Stat(filepath.Join(w.dir, ts))
	if info.Mode().Perm() != 0o755 {
		t.Errorf("timestamped dir mode = %v, want 0755", info.Mode().Perm())
	}
}

// A container holds the volume directory through a bind mount and resolves
// names through ..data: after an update it must see the new set of files,
// and the old version must be gone.
func TestAtomicWriterUpdateVisibleThroughData(t *testing.T) {
	w := newTestWriter(t)
	if _, err := w.write(map[string]fileProjection{"a": {Data: []byte("1"), Mode: 0o644}, "b": {Data: []byte("x"), Mode: 0o644}}, nil); err != nil {
		t.Fatal(err)
	}
	oldTs, _ := os.Readlink(filepath.Join(w.dir, dataDirName))

	written, err := w.write(map[string]fileProjection{"a": {Data: []byte("2"), Mode: 0o644}, "c": {Data: []byte("new"), Mode: 0o644}}, nil)
	if err != nil || !written {
		t.Fatalf("update = %v, %v", written, err)
	}
	newTs, _ := os.Readlink(filepath.Join(w.dir, dataDirName))
	if newTs == oldTs {
		t.Fatalf("..data still points at %s", oldTs)
	}
	if got := readVolumeFile(t, filepath.Join(w.dir, "a")); got != "2" {
		t.Errorf("a = %q after update, want 2", got)
	}
	if got := readVolumeFile(t, filepath.Join(w.dir, "..data", "c")); got != "new" {
		t.Errorf("..data/c = %q, want new", got)
	}
	if _, err := os.Lstat(filepath.Join(w.dir, "b")); !os.IsNotExist(err) {
		t.Errorf("b still visible after it left the payload: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.dir, oldTs)); !os.IsNotExist(err) {
		t.Errorf("old version %s not removed: %v", oldTs, err)
	}
	if _, err := os.Lstat(filepath.Join(w.dir, newDataDirName)); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", newDataDirName, err)
	}
}

func TestAtomicWriterNoChangeNoWrite(t *testing.T) {
	w := newTestWriter(t)
	payload := map[string]fileProjection{"a": {Data: []byte("1"), Mode: 0o644}}
	calls := 0
	setPerms := func() error { calls++; return nil }
	if _, err := w.write(payload, setPerms); err != nil {
		t.Fatal(err)
	}
	ts, _ := os.Readlink(filepath.Join(w.dir, dataDirName))
	// A lost visible link (crash mid-write) heals without a new version.
	if err := os.Remove(filepath.Join(w.dir, "a")); err != nil {
		t.Fatal(err)
	}
	written, err := w.write(payload, setPerms)
	if err != nil || written {
		t.Fatalf("second write = %v, %v; want false, nil", written, err)
	}
	if again, _ := os.Readlink(filepath.Join(w.dir, dataDirName)); again != ts {
		t.Errorf("..data moved from %s to %s without a change", ts, again)
	}
	if got := readVolumeFile(t, filepath.Join(w.dir, "a")); got != "1" {
		t.Errorf("a = %q, want the healed link to show 1", got)
	}
	if calls != 1 {
		t.Errorf("setPerms ran %d times, want once (only for a new version)", calls)
	}
}

func TestValidatePayloadPath(t *testing.T) {
	for _, tc := range []struct {
		path, wantErr string
	}{
		{"a", ""},
		{"a/b/c", ""},
		{"..", "must not contain '..'"},
		{"", "must not be empty"},
		{"/etc/passwd", "must be relative path"},
		{"a/../../b", "must not contain '..'"},
		{"..data", "must not start with '..'"},
		{strings.Repeat("x", 256), "filenames must be less than or equal to 255 characters"},
		{strings.Repeat("x/", 2049), "must be less than or equal to 4096 characters"},
	} {
		if err := validatePayloadPath(tc.path); !errContains(err, tc.wantErr) {
			t.Errorf("validatePayloadPath(%.20q) = %v, want error containing %q", tc.path, err, tc.wantErr)
		}
	}
}
