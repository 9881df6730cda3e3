package volume

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeMounter records mounts instead of making them, so tests run without
// root. A "tmpfs" is a directory it remembers; a bind mount remembers the
// file its source named.
type fakeMounter struct {
	mu      sync.Mutex
	tmpfs   map[string][]string // dir → options
	binds   map[string]string   // target → resolved source
	order   []string
	failOpt string // MountTmpfs fails with EINVAL when options hold it
}

func newFakeMounter() *fakeMounter {
	return &fakeMounter{tmpfs: map[string][]string{}, binds: map[string]string{}}
}

func (f *fakeMounter) MountTmpfs(dir string, options []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOpt != "" && slices.Contains(options, f.failOpt) {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, unix.EINVAL)
	}
	f.tmpfs[dir] = options
	f.order = append(f.order, dir)
	return nil
}

func (f *fakeMounter) TmpfsMounted(dir string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.tmpfs[dir]
	return ok, nil
}

func (f *fakeMounter) BindMount(source, target string) error {
	real, err := os.Readlink(source)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.binds[target] = real
	f.order = append(f.order, target)
	return nil
}

func (f *fakeMounter) Unmount(target string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tmpfs, target)
	delete(f.binds, target)
	f.order = slices.DeleteFunc(f.order, func(s string) bool { return s == target })
	return nil
}

func (f *fakeMounter) MountPoints(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return mountPointsUnder(f.order, dir), nil
}

// fakeAPI serves configMaps, secrets and tokens from memory.
type fakeAPI struct {
	mu         sync.Mutex
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	clock      *clocktesting.FakeClock
	tokenErr   error
	tokens     []*authenticationv1.TokenRequest // requests received
}

func newFakeAPI(clk *clocktesting.FakeClock) *fakeAPI {
	return &fakeAPI{configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}, clock: clk}
}

func (a *fakeAPI) ConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	return getObject(a, a.configMaps, "configmaps", ns, name)
}

func (a *fakeAPI) Secret(_ context.Context, ns, name string) (*v1.Secret, error) {
	return getObject(a, a.secrets, "secrets", ns, name)
}

// getObject returns a copy of objs[ns/name], or the NotFound error client-go
// returns, which names the plural resource.
func getObject[P interface{ DeepCopy() P }](a *fakeAPI, objs map[string]P, resource, ns, name string) (P, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o, ok := objs[ns+"/"+name]; ok {
		return o.DeepCopy(), nil
	}
	var none P
	return none, apierrors.NewNotFound(v1.Resource(resource), name)
}

func (a *fakeAPI) CreateToken(_ context.Context, ns, sa string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokenErr != nil {
		return nil, a.tokenErr
	}
	out := req.DeepCopy()
	exp := int64(3600)
	if out.Spec.ExpirationSeconds != nil {
		exp = *out.Spec.ExpirationSeconds
	} else {
		out.Spec.ExpirationSeconds = &exp
	}
	a.tokens = append(a.tokens, req.DeepCopy())
	out.Status.Token = fmt.Sprintf("token-%s-%s-%d", ns, sa, len(a.tokens))
	out.Status.ExpirationTimestamp = metav1.NewTime(a.clock.Now().Add(time.Duration(exp) * time.Second))
	return out, nil
}

func (a *fakeAPI) setConfigMap(cm *v1.ConfigMap) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.configMaps[cm.Namespace+"/"+cm.Name] = cm
}

func (a *fakeAPI) setSecret(s *v1.Secret) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[s.Namespace+"/"+s.Name] = s
}

func (a *fakeAPI) tokenRequests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.tokens)
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestManager returns a Manager on a temp root dir with fakes, and no
// token jitter.
func newTestManager(t *testing.T) (*Manager, *fakeAPI, *fakeMounter, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(testNow)
	api := newFakeAPI(clk)
	m := NewManager(t.TempDir(), api, clk, WithNodeAllocatable(v1.ResourceList{}))
	fm := newFakeMounter()
	m.mounter = fm
	m.tokens.jitter = func() time.Duration { return 0 }
	return m, api, fm, clk
}

func ptr[T any](v T) *T { return &v }

func testPod(uid types.UID, vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: uid,
			Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: v1.PodSpec{
			ServiceAccountName: "default",
			Volumes:            vols,
			Containers:         []v1.Container{{Name: "main", Image: "busybox"}},
		},
	}
}

// readVolumeFile reads a file through the volume's visible symlink, as a
// container would.
func readVolumeFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func errContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
