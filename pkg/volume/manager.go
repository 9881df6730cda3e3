package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// APISource is what the manager reads from the API server. The Node
// authorizer allows a node exactly these calls for pods bound to it.
type APISource interface {
	// ConfigMap gets a configMap; a missing one is an error for which
	// apierrors.IsNotFound is true.
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	// Secret gets a secret; a missing one is an error for which
	// apierrors.IsNotFound is true.
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
	// CreateToken asks for a token of a service account
	// (serviceaccounts/token subresource).
	CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// Manager prepares pods' volumes under the agent's root directory. It is
// safe for concurrent use by different pods; calls for one pod must not
// overlap.
type Manager struct {
	layout layout
	api    APISource
	clock  clock.Clock
	// mounter changes the host's mount table; tests fake it.
	mounter mounter
	tokens  *tokenCache

	allocatableOnce sync.Once
	allocatable     v1.ResourceList
	allocatableErr  error

	// noSwapUnsupported is set once a tmpfs mount refused "noswap".
	noSwapUnsupported atomic.Bool

	mu sync.Mutex
	// hostPaths remembers the hostPath volumes whose type check passed, per
	// pod: like the kubelet, the check runs when the volume is first set
	// up, not on every sync.
	hostPaths map[types.UID]map[string]bool
}

// Option configures a Manager.
type Option func(*Manager)

// WithNodeAllocatable sets what the node may allocate to pods. It is the
// value of a resourceFieldRef limit a container does not set, and bounds
// the size of memory-backed volumes. Without it the machine's capacity is
// used.
func WithNodeAllocatable(allocatable v1.ResourceList) Option {
	return func(m *Manager) {
		m.allocatableOnce.Do(func() { m.allocatable = allocatable.DeepCopy() })
	}
}

// NewManager returns a Manager for the agent's root directory (the kubelet's
// --root-dir). It does nothing until called.
func NewManager(rootDir string, api APISource, clk clock.Clock, opts ...Option) *Manager {
	m := &Manager{
		layout:    layout{rootDir: rootDir},
		api:       api,
		clock:     clk,
		mounter:   hostMounter{},
		tokens:    newTokenCache(clk),
		hostPaths: map[types.UID]map[string]bool{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// PrepareRootDir creates the pods directory and makes the root directory a
// shared mount, as the kubelet does at start, so that volumes mounted with
// HostToContainer or Bidirectional propagation work. Call it once before
// the first SetUp.
func (m *Manager) PrepareRootDir(ctx context.Context) error {
	if err := os.MkdirAll(m.layout.podsDir(), podDirPerm); err != nil {
		return fmt.Errorf("create pods directory: %w", err)
	}
	if err := makeShared(m.layout.rootDir); err != nil {
		return fmt.Errorf("configure root directory: %w", err)
	}
	klog.FromContext(ctx).V(2).Info("Prepared root directory", "path", m.layout.rootDir)
	return nil
}

// SetUp makes every volume of pod ready and current, and returns where each
// is. Call it on every sync of the pod: it creates what is missing and
// refreshes content that changed, and nothing else.
//
// Each volume that fails yields a *SetUpError (see FailedMounts); the
// others are still set up. The returned PodVolumes holds every volume
// usable now, including those whose refresh failed (Stale), so a container
// whose volumes are all in it can be started.
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod) (PodVolumes, error) {
	logger := klog.FromContext(ctx)
	m.tokens.dropExpired()
	for _, dir := range []string{m.layout.podDir(pod.UID), m.layout.volumesDir(pod.UID), m.layout.pluginsDir(pod.UID)} {
		if err := os.MkdirAll(dir, podDirPerm); err != nil {
			return nil, fmt.Errorf("create pod directory: %w", err)
		}
	}

	var fsGroup *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		fsGroup = sc.FSGroup
	}
	fsUser := podFSUser(pod)
	podDir := m.layout.podDir(pod.UID)

	vols := make(PodVolumes, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		v, usable, err := m.setUpVolume(ctx, pod, vol, fsGroup, fsUser)
		if usable {
			v.subPaths = &subPaths{podDir: podDir, mounter: m.mounter}
			vols[vol.Name] = v
		}
		if err != nil {
			logger.V(2).Info("Failed to set up volume", "pod", klog.KObj(pod), "volume", vol.Name, "stale", usable, "err", err)
			errs = append(errs, &SetUpError{Volume: vol.Name, Stale: usable, Err: err})
		}
	}
	return vols, errors.Join(errs...)
}

// setUpVolume sets up one volume. The bool says whether the returned Volume
// can be mounted, which may be so even with an error (a failed refresh).
func (m *Manager) setUpVolume(ctx context.Context, pod *v1.Pod, vol *v1.Volume, fsGroup, fsUser *int64) (Volume, bool, error) {
	switch src := vol.VolumeSource; {
	case src.EmptyDir != nil:
		dir := m.layout.volumeDir(pod.UID, pluginEmptyDir, vol.Name)
		err := m.setUpEmptyDir(ctx, emptyDirSpec{pod: pod, volName: vol.Name, dir: dir, medium: src.EmptyDir.Medium, sizeLimit: src.EmptyDir.SizeLimit, fsGroup: fsGroup})
		return Volume{HostPath: dir}, err == nil, err
	case src.HostPath != nil:
		if m.hostPathChecked(pod.UID, vol.Name) {
			return Volume{HostPath: src.HostPath.Path}, true, nil
		}
		if err := checkHostPath(src.HostPath); err != nil {
			return Volume{}, false, err
		}
		m.markHostPathChecked(pod.UID, vol.Name)
		return Volume{HostPath: src.HostPath.Path}, true, nil
	}
	if cv, ok := m.contentVolumeFor(pod, vol, fsGroup, fsUser); ok {
		dir, published, err := m.setUpContent(ctx, pod, vol, cv, fsGroup)
		return Volume{HostPath: dir, ReadOnly: true}, published, err
	}
	return Volume{}, false, unsupportedKindError(vol)
}

// nodeAllocatable returns what WithNodeAllocatable set, else the machine's
// capacity, read once.
func (m *Manager) nodeAllocatable() (v1.ResourceList, error) {
	m.allocatableOnce.Do(func() {
		m.allocatable, m.allocatableErr = machineAllocatable(m.layout.rootDir)
	})
	return m.allocatable, m.allocatableErr
}

func (m *Manager) hostPathChecked(uid types.UID, name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostPaths[uid][name]
}

func (m *Manager) markHostPathChecked(uid types.UID, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hostPaths[uid] == nil {
		m.hostPaths[uid] = map[string]bool{}
	}
	m.hostPaths[uid][name] = true
}

// forgetPod drops what the manager remembers about a pod.
func (m *Manager) forgetPod(uid types.UID) {
	m.tokens.forgetPod(uid)
	m.mu.Lock()
	delete(m.hostPaths, uid)
	m.mu.Unlock()
}
