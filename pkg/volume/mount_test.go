package volume

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const testMountInfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:40 / /var/lib/agent rw,relatime - ext4 /dev/vda rw
41 40 0:41 / /var/lib/agent/pods/u1/volumes/kubernetes.io~secret/my\040secret rw - tmpfs tmpfs rw
42 40 0:42 / /var/lib/agent/pods/u1/volume-subpaths/data/main/0 rw - ext4 /dev/vda rw
43 40 0:43 / /var/lib/agent/pods/u10/volumes/x rw - tmpfs tmpfs rw
`

func TestParseMountInfo(t *testing.T) {
	all := parseMountInfo([]byte(testMountInfo))
	got := mountPointsUnder(all, "/var/lib/agent/pods/u1")
	want := []string{
		"/var/lib/agent/pods/u1/volumes/kubernetes.io~secret/my secret",
		"/var/lib/agent/pods/u1/volume-subpaths/data/main/0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mount points = %q, want %q", got, want)
	}
	for dir, want := range map[string]bool{"/var/lib/agent": false, "/var/lib/agent/pods": false, "/srv": true, "/": true} {
		if got := sharedMount([]byte(testMountInfo), dir); got != want {
			t.Errorf("sharedMount(%s) = %v, want %v", dir, got, want)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
}

// TestRealMounts mounts a real tmpfs and a real subPath bind mount, then
// tears them down.
func TestRealMounts(t *testing.T) {
	requireRoot(t)
	t.Run("root dir", func(t *testing.T) { testRealMounts(t, false) })
	t.Run("root dir through a symlink", func(t *testing.T) { testRealMounts(t, true) })
}

func testRealMounts(t *testing.T, symlinkedRoot bool) {
	ctx := context.Background()
	m, _, _, _ := newTestManager(t)
	m.mounter = hostMounter{}
	if symlinkedRoot {
		link := filepath.Join(t.TempDir(), "root")
		if err := os.Symlink(m.layout.rootDir, link); err != nil {
			t.Fatal(err)
		}
		m.layout.rootDir = link
	}
	podDir := m.layout.podDir("uid-1")
	t.Cleanup(func() {
		// Whatever a failure left mounted must not outlive the test.
		mps, _ := hostMounter{}.MountPoints(podDir)
		for _, mp := range slices.Backward(mps) {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	})
	pod := testPod("uid-1", v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{
		Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("1Mi"))}}})
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	dir := vols["mem"].HostPath
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("%s is not a tmpfs (%v)", dir, err)
	}
	if size := int64(st.Blocks) * st.Bsize; size != 1<<20 {
		t.Errorf("tmpfs size = %d, want 1Mi", size)
	}
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatalf("second SetUp: %v", err)
	}
	if mps, _ := (hostMounter{}).MountPoints(podDir); len(mps) != 1 {
		t.Errorf("mounts after second SetUp = %v, want the one tmpfs", mps)
	}

	c := &v1.Container{Name: "main", VolumeMounts: []v1.VolumeMount{{Name: "mem", MountPath: "/m", SubPath: "a/b"}}}
	mounts, err := vols.Mounts(c)
	if err != nil {
		t.Fatalf("Mounts: %v", err)
	}
	if _, err := vols.Mounts(c); err != nil { // container restart
		t.Fatalf("Mounts again: %v", err)
	}
	if mps, _ := (hostMounter{}).MountPoints(mounts[0].HostPath); len(mps) != 1 {
		t.Errorf("mounts on the subPath target = %v, want one", mps)
	}
	if err := os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, filepath.Join(mounts[0].HostPath, "f")); got != "hi" {
		t.Errorf("subPath bind shows %q, want the volume's file", got)
	}
	// A container swapping the subPath for a symlink does not move an
	// existing bind mount: the next Mounts re-checks and refuses.
	if err := os.RemoveAll(filepath.Join(dir, "a/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "a/b")); err != nil {
		t.Fatal(err)
	}
	if _, err := vols.Mounts(c); err == nil {
		t.Error("Mounts followed a symlink out of the volume")
	}

	if err := m.TearDown(ctx, "uid-1"); err != nil {
		t.Fatalf("TearDown: %v", err)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}
	if _, err := os.Stat("/etc/hostname"); err != nil && !os.IsNotExist(err) {
		t.Errorf("host files touched: %v", err)
	}
}

func TestPrepareRootDir(t *testing.T) {
	requireRoot(t)
	m, _, _, _ := newTestManager(t)
	root := m.layout.rootDir
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	if err := m.PrepareRootDir(context.Background()); err != nil {
		t.Fatalf("PrepareRootDir: %v", err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !sharedMount(data, filepath.Join(root, "pods")) {
		t.Error("root dir is not on a shared mount")
	}
	if info, err := os.Stat(filepath.Join(root, "pods")); err != nil || info.Mode().Perm() != 0o750 {
		t.Errorf("pods dir: %v, %v", info, err)
	}
	// Idempotent: no second bind mount.
	if err := m.PrepareRootDir(context.Background()); err != nil {
		t.Fatal(err)
	}
	mps, _ := hostMounter{}.MountPoints(root)
	if len(mps) != 1 {
		t.Errorf("mounts on root dir = %v, want one", mps)
	}
}
