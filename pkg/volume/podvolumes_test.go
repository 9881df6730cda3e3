package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMounts(t *testing.T) {
	pv := PodVolumes{
		"data":   {HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data"},
		"config": {HostPath: "/r/pods/u/volumes/kubernetes.io~configmap/config", ReadOnly: true},
	}
	for _, tc := range []struct {
		name    string
		vm      v1.VolumeMount
		want    *runtimeapi.Mount
		wantErr string
	}{
		{name: "private by default", vm: v1.VolumeMount{Name: "data", MountPath: "/data"},
			want: &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE}},
		{name: "readOnly mount", vm: v1.VolumeMount{Name: "data", MountPath: "/data", ReadOnly: true},
			want: &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Readonly: true}},
		{name: "read-only by nature", vm: v1.VolumeMount{Name: "config", MountPath: "/etc/app"},
			want: &runtimeapi.Mount{ContainerPath: "/etc/app", HostPath: "/r/pods/u/volumes/kubernetes.io~configmap/config", Readonly: true}},
		{name: "None", vm: v1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(v1.MountPropagationNone)},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE}},
		{name: "HostToContainer", vm: v1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(v1.MountPropagationHostToContainer)},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
		{name: "Bidirectional", vm: v1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(v1.MountPropagationBidirectional)},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
		{name: "relative mountPath made absolute", vm: v1.VolumeMount{Name: "data", MountPath: "data/x/"},
			want: &runtimeapi.Mount{ContainerPath: "/data/x", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data"}},
		{name: "recursive read-only if possible", vm: v1.VolumeMount{Name: "data", MountPath: "/d", ReadOnly: true, RecursiveReadOnly: ptr(v1.RecursiveReadOnlyIfPossible)},
			want: &runtimeapi.Mount{ContainerPath: "/d", HostPath: "/r/pods/u/volumes/kubernetes.io~empty-dir/data", Readonly: true}},
		{name: "recursive read-only required", vm: v1.VolumeMount{Name: "data", MountPath: "/d", ReadOnly: true, RecursiveReadOnly: ptr(v1.RecursiveReadOnlyEnabled)},
			wantErr: `failed to resolve recursive read-only mode: volume "data" requested recursive read-only mode, but it is not supported by the runtime`},
		{name: "unknown volume", vm: v1.VolumeMount{Name: "nope", MountPath: "/x"},
			wantErr: `cannot find volume "nope" to mount into container "main"`},
		{name: "bad propagation", vm: v1.VolumeMount{Name: "data", MountPath: "/x", MountPropagation: ptr(v1.MountPropagationMode("Sideways"))},
			wantErr: `invalid MountPropagation mode: "Sideways"`},
		{name: "absolute subPath", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "/etc"},
			wantErr: "error SubPath `/etc` must not be an absolute path"},
		{name: "escaping subPath", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "a/../../etc"},
			wantErr: "unable to provision SubPath `a/../../etc`: must not contain '..'"},
		{name: "escaping subPathExpr", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "$(UP)/etc"},
			wantErr: "unable to provision SubPath `../etc`: must not contain '..'"},
		{name: "subPathExpr with missing variable", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "$(POD_NAME)"},
			wantErr: "missing value for POD_NAME"},
		{name: "subPath on a hand-built volume", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "a"},
			wantErr: `failed to prepare subPath for volumeMount "data" of container "main"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1.Container{Name: "main", VolumeMounts: []v1.VolumeMount{tc.vm}, Env: []v1.EnvVar{{Name: "UP", Value: ".."}}}
			got, err := pv.Mounts(c)
			if !errContains(err, tc.wantErr) {
				t.Fatalf("Mounts = %v, want error %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d mounts", len(got))
			}
			g, w := got[0], tc.want
			if g.ContainerPath != w.ContainerPath || g.HostPath != w.HostPath || g.Readonly != w.Readonly ||
				g.Propagation != w.Propagation || g.SelinuxRelabel || g.RecursiveReadOnly != w.RecursiveReadOnly {
				t.Errorf("mount = %v, want %v", g, w)
			}
		})
	}
}

// subPathFixture is a pod directory with one emptyDir volume whose subPath
// mounts go through the fake mounter.
func subPathFixture(t *testing.T) (PodVolumes, string, *fakeMounter) {
	t.Helper()
	podDir := t.TempDir()
	volDir := filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "data")
	if err := os.MkdirAll(volDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(volDir, 0o777|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	fm := newFakeMounter()
	return PodVolumes{"data": {HostPath: volDir, subPaths: &subPaths{podDir: podDir, mounter: fm}}}, podDir, fm
}

func TestMountsSubPathCreatesAndBinds(t *testing.T) {
	pv, podDir, fm := subPathFixture(t)
	volDir := pv["data"].HostPath
	c := &v1.Container{Name: "main", Env: []v1.EnvVar{{Name: "POD", Value: "web-0"}}, VolumeMounts: []v1.VolumeMount{
		{Name: "data", MountPath: "/a", SubPath: "logs/app"},
		{Name: "data", MountPath: "/b", SubPathExpr: "pods/$(POD)"},
	}}
	got, err := pv.Mounts(c)
	if err != nil {
		t.Fatalf("Mounts: %v", err)
	}
	for i, sub := range []string{"logs/app", "pods/web-0"} {
		target := filepath.Join(podDir, "volume-subpaths", "data", "main", []string{"0", "1"}[i])
		if got[i].HostPath != target {
			t.Errorf("mount %d host path = %s, want %s", i, got[i].HostPath, target)
		}
		if src := fm.binds[target]; src != filepath.Join(volDir, sub) {
			t.Errorf("bind on %s from %q, want %s", target, src, filepath.Join(volDir, sub))
		}
		// Created with the volume's mode, setgid included.
		info, err := os.Stat(filepath.Join(volDir, sub))
		if err != nil || info.Mode().Perm() != 0o777 || info.Mode()&os.ModeSetgid == 0 {
			t.Errorf("subPath %s mode = %v (%v), want 0777 with setgid", sub, info.Mode(), err)
		}
	}
	// Asked again (container restart): still one bind per target.
	if _, err := pv.Mounts(c); err != nil {
		t.Fatalf("Mounts again: %v", err)
	}
	if len(fm.binds) != 2 {
		t.Errorf("binds = %v, want 2", fm.binds)
	}
}

func TestMountsSubPathSymlinks(t *testing.T) {
	pv, _, fm := subPathFixture(t)
	volDir := pv["data"].HostPath
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(volDir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"escape": outside, "escape-rel": "../../../../..", "inside": "real"} {
		if err := os.Symlink(target, filepath.Join(volDir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		subPath, wantErr string
	}{
		{"escape", `failed to prepare subPath for volumeMount "data" of container "main"`},
		{"escape-rel", `failed to prepare subPath for volumeMount "data" of container "main"`},
		{"escape/new", `failed to create subPath directory for volumeMount "data" of container "main"`},
		{"inside", ""},
	} {
		t.Run(tc.subPath, func(t *testing.T) {
			c := &v1.Container{Name: "main", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: tc.subPath}}}
			got, err := pv.Mounts(c)
			if !errContains(err, tc.wantErr) {
				t.Fatalf("Mounts = %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), outside) {
					t.Errorf("error %q tells the user about the host", err)
				}
				return
			}
			if src := fm.binds[got[0].HostPath]; src != filepath.Join(volDir, "real") {
				t.Errorf("bound %q, want the symlink's target inside the volume", src)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created %v outside the volume", entries)
	}
}

func TestSafeOpenRejectsSymlinks(t *testing.T) {
	base := t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := safeOpen(filepath.Join(base, "a", "b"), base)
	if err != nil {
		t.Fatalf("safeOpen(a/b): %v", err)
	}
	unix.Close(fd)
	if _, err := safeOpen(filepath.Join(base, "link", "b"), base); !errContains(err, "unexpected symlink found") {
		t.Errorf("safeOpen through a symlink: %v", err)
	}
}

func TestLiteralEnv(t *testing.T) {
	got := literalEnv([]v1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "$(A)-2"}, {Name: "C", ValueFrom: &v1.EnvVarSource{}}})
	if got["B"] != "1-2" || len(got) != 2 {
		t.Errorf("literalEnv = %v", got)
	}
}

// The documented example: POD_NAME comes from the downward API, which only
// the container's resolved environment has. Mounts, with literal values
// alone, cannot expand it; MountsWithEnv does.
func TestMountsWithEnvExpandsValueFrom(t *testing.T) {
	pv, podDir, fm := subPathFixture(t)
	volDir := pv["data"].HostPath
	c := &v1.Container{Name: "main",
		Env:          []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/logs", SubPathExpr: "$(POD_NAME)"}},
	}
	if _, err := pv.Mounts(c); !errContains(err, "missing value for POD_NAME") {
		t.Errorf("Mounts = %v, want the variable missing", err)
	}
	got, err := pv.MountsWithEnv(c, map[string]string{"POD_NAME": "web-0"})
	if err != nil {
		t.Fatalf("MountsWithEnv: %v", err)
	}
	target := filepath.Join(podDir, "volume-subpaths", "data", "main", "0")
	if len(got) != 1 || got[0].HostPath != target || got[0].ContainerPath != "/logs" {
		t.Fatalf("mounts = %v, want /logs from %s", got, target)
	}
	if src := fm.binds[target]; src != filepath.Join(volDir, "web-0") {
		t.Errorf("bind on %s from %q, want %s", target, src, filepath.Join(volDir, "web-0"))
	}
	// An empty value is as missing as an unset one, as with the kubelet.
	if _, err := pv.MountsWithEnv(c, map[string]string{"POD_NAME": ""}); !errContains(err, "missing value for POD_NAME") {
		t.Errorf("MountsWithEnv with an empty value = %v", err)
	}
}
