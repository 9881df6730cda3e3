package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func configMapVolume(name, cmName string, optional bool) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cmName}, DefaultMode: ptr[int32](0o644), Optional: &optional}}}
}

func TestSetUpLayoutAndKinds(t *testing.T) {
	ctx := context.Background()
	m, api, fm, _ := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v"}})
	api.setSecret(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"pw": []byte("s3cret")}})
	hostDir := t.TempDir()
	pod := testPod("uid-1",
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "cache", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("1Mi"))}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: ptr(v1.HostPathDirectory)}}},
		configMapVolume("config", "app", false),
		v1.Volume{Name: "creds", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr[int32](0o400)}}},
		v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{DefaultMode: ptr[int32](0o644),
			Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
	)
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	root := m.layout.rootDir
	want := PodVolumes{
		"scratch": {HostPath: root + "/pods/uid-1/volumes/kubernetes.io~empty-dir/scratch"},
		"cache":   {HostPath: root + "/pods/uid-1/volumes/kubernetes.io~empty-dir/cache"},
		"host":    {HostPath: hostDir},
		"config":  {HostPath: root + "/pods/uid-1/volumes/kubernetes.io~configmap/config", ReadOnly: true},
		"creds":   {HostPath: root + "/pods/uid-1/volumes/kubernetes.io~secret/creds", ReadOnly: true},
		"info":    {HostPath: root + "/pods/uid-1/volumes/kubernetes.io~downward-api/info", ReadOnly: true},
	}
	for name, w := range want {
		if g := vols[name]; g.HostPath != w.HostPath || g.ReadOnly != w.ReadOnly {
			t.Errorf("volume %s = %+v, want %+v", name, g, w)
		}
	}
	for _, dir := range []string{"pods/uid-1", "pods/uid-1/volumes", "pods/uid-1/plugins"} {
		if info, err := os.Stat(filepath.Join(root, dir)); err != nil || info.Mode().Perm() != 0o750 {
			t.Errorf("%s: mode %v, %v; want 0750", dir, info.Mode().Perm(), err)
		}
	}
	if info, err := os.Stat(want["scratch"].HostPath); err != nil || info.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir mode = %v, %v; want 0777", info.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(root, "pods/uid-1/plugins/kubernetes.io~empty-dir/scratch/ready")); err != nil {
		t.Errorf("ready marker: %v", err)
	}
	if got := readVolumeFile(t, filepath.Join(want["config"].HostPath, "k")); got != "v" {
		t.Errorf("configMap file = %q", got)
	}
	if got := readVolumeFile(t, filepath.Join(want["creds"].HostPath, "pw")); got != "s3cret" {
		t.Errorf("secret file = %q", got)
	}
	if got := readVolumeFile(t, filepath.Join(want["info"].HostPath, "name")); got != "app" {
		t.Errorf("downwardAPI file = %q", got)
	}
	// Memory emptyDir, secret and downwardAPI are on tmpfs; configMap is not.
	for _, name := range []string{"cache", "creds", "info"} {
		if _, ok := fm.tmpfs[want[name].HostPath]; !ok {
			t.Errorf("%s not on tmpfs", name)
		}
	}
	if _, ok := fm.tmpfs[want["config"].HostPath]; ok {
		t.Error("configMap on tmpfs, the kubelet keeps it on disk")
	}
	if opts := fm.tmpfs[want["cache"].HostPath]; !slices.Equal(opts, []string{"size=1048576", "noswap"}) {
		t.Errorf("tmpfs options = %q", opts)
	}

	// Idempotent: nothing is mounted twice, nothing rewritten.
	before := len(fm.order)
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatalf("second SetUp: %v", err)
	}
	if len(fm.order) != before {
		t.Errorf("second SetUp mounted again: %v", fm.order)
	}
}

func TestSetUpRefreshesConfigMapInPlace(t *testing.T) {
	ctx := context.Background()
	m, api, _, _ := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v1"}})
	pod := testPod("uid-1", configMapVolume("config", "app", false))
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	// What a container's bind mount shows: the volume directory itself.
	path := filepath.Join(vols["config"].HostPath, "k")
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v2"}})
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, path); got != "v2" {
		t.Errorf("after update %s = %q, want v2", path, got)
	}
}

func TestSetUpErrors(t *testing.T) {
	ctx := context.Background()
	m, api, _, _ := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v"}})
	pod := testPod("uid-1",
		configMapVolume("good", "app", false),
		configMapVolume("missing", "nope", false),
		configMapVolume("optional", "nope", true),
		v1.Volume{Name: "creds", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "nope", DefaultMode: ptr[int32](0o644)}}},
		v1.Volume{Name: "claim", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
		v1.Volume{Name: "sock", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/nonexistent.sock", Type: ptr(v1.HostPathSocket)}}},
		v1.Volume{Name: "huge", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: "HugePages-2Mi"}}},
	)
	vols, err := m.SetUp(ctx, pod)
	got := map[string]string{}
	for _, e := range FailedMounts(err) {
		got[e.Volume] = e.Error()
		if e.Stale {
			t.Errorf("%s marked stale on first set up", e.Volume)
		}
	}
	want := map[string]string{
		"missing": `MountVolume.SetUp failed for volume "missing" : configmap "nope" not found`,
		"creds":   `MountVolume.SetUp failed for volume "creds" : secret "nope" not found`,
		"claim":   `MountVolume.SetUp failed for volume "claim" : volume kind not supported by this node agent: persistentVolumeClaim`,
		"sock":    `MountVolume.SetUp failed for volume "sock" : hostPath type check failed, /nonexistent.sock is not a socket file, unable to determine its type: path "/nonexistent.sock" does not exist`,
		"huge":    `MountVolume.SetUp failed for volume "huge" : volume kind not supported by this node agent: emptyDir medium HugePages-2Mi`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("error for %s = %q\n want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors for %v, want only %v", got, want)
	}
	var se *SetUpError
	if !errors.As(err, &se) || !apierrors.IsNotFound(se.Err) && !errors.Is(se.Err, ErrUnsupported) && !strings.Contains(se.Err.Error(), "hostPath") {
		t.Errorf("errors.As(*SetUpError) = %v", err)
	}
	for _, name := range []string{"good", "optional"} {
		if _, ok := vols[name]; !ok {
			t.Errorf("usable volume %s missing from %v", name, vols)
		}
	}
	for name := range want {
		if _, ok := vols[name]; ok {
			t.Errorf("failed volume %s in PodVolumes", name)
		}
	}
	// A failed configMap leaves nothing behind.
	if _, err := os.Stat(m.layout.volumeDir("uid-1", pluginConfigMap, "missing")); !os.IsNotExist(err) {
		t.Errorf("directory of failed volume exists: %v", err)
	}
	// The optional configMap is an empty, published volume.
	entries, _ := os.ReadDir(vols["optional"].HostPath)
	if len(entries) != 2 { // ..data and the timestamped dir
		t.Errorf("optional volume holds %v", entries)
	}
}

func TestSetUpStaleKeepsVolume(t *testing.T) {
	ctx := context.Background()
	m, api, _, _ := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v"}})
	pod := testPod("uid-1", configMapVolume("config", "app", false))
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	delete(api.configMaps, "ns/app")
	vols, err := m.SetUp(ctx, pod)
	fails := FailedMounts(err)
	if len(fails) != 1 || !fails[0].Stale {
		t.Fatalf("errors = %v, want one stale", err)
	}
	if _, ok := vols["config"]; !ok {
		t.Error("stale volume left out of PodVolumes")
	}
	if got := readVolumeFile(t, filepath.Join(vols["config"].HostPath, "k")); got != "v" {
		t.Errorf("stale content = %q, want the previous", got)
	}
}

func TestSetUpFSGroupAndModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing group ownership needs root")
	}
	ctx := context.Background()
	m, api, _, _ := newTestManager(t)
	api.setSecret(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"pw": []byte("x")}})
	pod := testPod("uid-1",
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "creds", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr[int32](0o600),
			Items: []v1.KeyToPath{{Key: "pw", Path: "pw"}, {Key: "pw", Path: "open", Mode: ptr[int32](0o604)}}}}},
		v1.Volume{Name: "token", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o644),
			Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr[int64](3607)}}}}}},
	)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr[int64](2000)}
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	check := func(path string, wantMode os.FileMode) {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := info.Sys().(*syscall.Stat_t)
		if info.Mode()&(os.ModePerm|os.ModeSetgid) != wantMode || st.Gid != 2000 {
			t.Errorf("%s: mode %v gid %d, want %v gid 2000", path, info.Mode(), st.Gid, wantMode)
		}
	}
	check(vols["scratch"].HostPath, 0o777|os.ModeSetgid)
	check(vols["creds"].HostPath, 0o777|os.ModeSetgid)
	check(filepath.Join(vols["creds"].HostPath, "pw"), 0o640)   // 0600 + group read
	check(filepath.Join(vols["creds"].HostPath, "open"), 0o644) // 0604 + group read
	check(filepath.Join(vols["creds"].HostPath, "..data")+"/", 0o755|os.ModeSetgid)
	check(filepath.Join(vols["token"].HostPath, "token"), 0o640) // 0600 for fsGroup, then group read
}

func TestSetUpProjectedTokenRenewal(t *testing.T) {
	ctx := context.Background()
	m, api, _, clk := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "CA"}})
	pod := testPod("uid-1", v1.Volume{Name: "kube-api-access", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: ptr[int32](0o644),
		Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "api", ExpirationSeconds: ptr[int64](3607)}},
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []v1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		},
	}}})
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := vols["kube-api-access"].HostPath
	if !strings.HasSuffix(dir, "/volumes/kubernetes.io~projected/kube-api-access") || !vols["kube-api-access"].ReadOnly {
		t.Errorf("projected volume = %+v", vols["kube-api-access"])
	}
	for name, want := range map[string]string{"token": "token-ns-default-1", "ca.crt": "CA", "namespace": "ns"} {
		if got := readVolumeFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	req := api.tokens[0]
	if ref := req.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.APIVersion != "v1" || ref.Name != "app" || ref.UID != "uid-1" {
		t.Errorf("bound object ref = %+v", req.Spec.BoundObjectRef)
	}
	if !slices.Equal(req.Spec.Audiences, []string{"api"}) || *req.Spec.ExpirationSeconds != 3607 {
		t.Errorf("token request spec = %+v", req.Spec)
	}
	if info, _ := os.Stat(filepath.Join(dir, "token")); info.Mode().Perm() != 0o644 {
		t.Errorf("token mode = %v, want defaultMode without fsGroup or fsUser", info.Mode().Perm())
	}

	clk.Step(45 * time.Minute) // 75%
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if api.tokenRequests() != 1 {
		t.Errorf("token renewed before 80%% of its ttl")
	}
	clk.Step(4 * time.Minute) // 82%
	if _, err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, filepath.Join(dir, "token")); got != "token-ns-default-2" {
		t.Errorf("token after renewal = %q", got)
	}

}

func TestSetUpTokenOwnedByRunAsUser(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	m, _, _, _ := newTestManager(t)
	pod := testPod("uid-1", v1.Volume{Name: "token", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o644),
		Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr[int64](3607)}}}}}})
	// All containers, the ephemeral one too, run as one user: the token is
	// that user's, mode 0600.
	pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptr[int64](1000)}
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug"}}}
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(vols["token"].HostPath, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || info.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("token mode %v owner %d, want 0600 owned by 1000", info.Mode().Perm(), info.Sys().(*syscall.Stat_t).Uid)
	}
}

func TestSetUpNoswapFallback(t *testing.T) {
	m, _, fm, _ := newTestManager(t)
	fm.failOpt = "noswap"
	pod := testPod("uid-1", v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
	vols, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if opts, ok := fm.tmpfs[vols["mem"].HostPath]; !ok || len(opts) != 0 {
		t.Errorf("tmpfs options = %q (mounted %v), want none", opts, ok)
	}
	if !m.noSwapUnsupported.Load() {
		t.Error("noswap failure not remembered")
	}
}

func TestNestedMountPointsInReadOnlyVolume(t *testing.T) {
	m, api, _, _ := newTestManager(t)
	api.setConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"k": "v"}})
	pod := testPod("uid-1", configMapVolume("config", "app", false), v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug",
		VolumeMounts: []v1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "data", MountPath: "/etc/app/data/"}}}}}
	vols, err := m.SetUp(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(vols["config"].HostPath, "data")); err != nil || !info.IsDir() {
		t.Errorf("nested mount point not created: %v", err)
	}
}

func TestTearDownAndCleanupOrphans(t *testing.T) {
	ctx := context.Background()
	m, _, fm, _ := newTestManager(t)
	mkPod := func(uid types.UID) PodVolumes {
		pod := testPod(uid, v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
		vols, err := m.SetUp(ctx, pod)
		if err != nil {
			t.Fatal(err)
		}
		return vols
	}
	mkPod("keep")
	vols := mkPod("gone")
	c := &v1.Container{Name: "main", VolumeMounts: []v1.VolumeMount{{Name: "mem", MountPath: "/m", SubPath: "sub"}}}
	if _, err := vols.Mounts(c); err != nil {
		t.Fatal(err)
	}
	if err := m.CleanupOrphans(ctx, func(uid types.UID) bool { return uid == "keep" }); err != nil {
		t.Fatalf("CleanupOrphans: %v", err)
	}
	if _, err := os.Stat(m.layout.podDir("gone")); !os.IsNotExist(err) {
		t.Errorf("orphan's directory left: %v", err)
	}
	if mps, _ := fm.MountPoints(m.layout.podDir("gone")); len(mps) != 0 {
		t.Errorf("orphan's mounts left: %v", mps)
	}
	if _, err := os.Stat(m.layout.podDir("keep")); err != nil {
		t.Errorf("kept pod's directory removed: %v", err)
	}
	if err := m.TearDown(ctx, "never-existed"); err != nil {
		t.Errorf("TearDown of unknown pod: %v", err)
	}
}

func TestTearDownRefusesWithMountLeft(t *testing.T) {
	m, _, _, _ := newTestManager(t)
	stuck := &stuckMounter{fakeMounter: newFakeMounter()}
	m.mounter = stuck
	pod := testPod("uid-1", v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
	if _, err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if err := m.TearDown(context.Background(), "uid-1"); !errContains(err, "still has mounts") {
		t.Fatalf("TearDown = %v, want refusal", err)
	}
	if _, err := os.Stat(m.layout.podDir("uid-1")); err != nil {
		t.Errorf("pod directory removed despite a mount: %v", err)
	}
}

// stuckMounter's unmounts succeed without unmounting.
type stuckMounter struct{ *fakeMounter }

func (stuckMounter) Unmount(string, bool) error { return nil }

func TestVolumeKind(t *testing.T) {
	for want, src := range map[string]v1.VolumeSource{
		"persistentVolumeClaim": {PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{}},
		"csi":                   {CSI: &v1.CSIVolumeSource{}},
		"nfs":                   {NFS: &v1.NFSVolumeSource{}},
		"unknown":               {},
	} {
		if got := volumeKind(&src); got != want {
			t.Errorf("volumeKind = %q, want %q", got, want)
		}
	}
}
