package cm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// cgroupWriter creates, updates, removes and lists cgroups by name;
// libctCgroups is the real one.
type cgroupWriter interface {
	Apply(name CgroupName, rc ResourceConfig) error
	Exists(name CgroupName) bool
	Destroy(name CgroupName) error
	Children(name CgroupName) ([]string, error)
}

// Config configures a Manager.
type Config struct {
	// Root is --cgroup-root, a cgroupfs path ("/" by default); it must
	// exist, as the kubelet requires.
	Root string
	// Driver is the cgroup driver in force (see ResolveDriver).
	Driver Driver
	// PodPidsLimit is --pod-max-pids; zero or less is no limit.
	PodPidsLimit int64
	// Capacity is the node's capacity, for the kubepods cgroup.
	Capacity v1.ResourceList
	// QOS returns a pod's QoS class (criconfig.PodQOS).
	QOS func(*v1.Pod) v1.PodQOSClass
	// Pods lists the node's pods, for the burstable tier's shares.
	Pods func() []*v1.Pod
}

// Manager owns the node's pod cgroups: the QoS tiers and one cgroup per
// pod. It is safe for concurrent use.
type Manager struct {
	cfg       Config
	hierarchy Hierarchy
	cgroups   cgroupWriter
	// tiersMu serialises updates of the QoS tiers, which every new pod
	// triggers.
	tiersMu sync.Mutex
}

// New returns the Manager of the node's pod cgroups. It fails when the
// systemd driver is asked for on a machine systemd does not run, or when
// the root does not exist.
func New(cfg Config) (*Manager, error) {
	if cfg.Driver == DriverSystemd {
		if err := systemdRunning(systemdRuntimeDir); err != nil {
			return nil, err
		}
	}
	m := newManager(cfg, newLibctCgroups(cfg.Driver))
	if root := m.hierarchy.Root; len(root) > 0 && !m.cgroups.Exists(root) {
		return nil, fmt.Errorf("cgroup root %q does not exist: create it, or choose another with --cgroup-root", cfg.Root)
	}
	return m, nil
}

func newManager(cfg Config, w cgroupWriter) *Manager {
	return &Manager{
		cfg:       cfg,
		hierarchy: Hierarchy{Root: ParseCgroupfs(cfg.Root), Driver: cfg.Driver},
		cgroups:   w,
	}
}

// systemdRuntimeDir exists where systemd is the init system.
const systemdRuntimeDir = "/run/systemd/system"

func systemdRunning(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("cgroup driver %q needs systemd, which does not run on this machine (%s is absent): use --cgroup-driver=%s", DriverSystemd, dir, DriverCgroupfs)
	}
	return nil
}

// Hierarchy returns the names of the node's pod cgroups.
func (m *Manager) Hierarchy() Hierarchy { return m.hierarchy }

// Start creates or updates kubepods and the QoS tiers.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.cgroups.Apply(m.hierarchy.Kubepods(), KubepodsConfig(m.cfg.Capacity)); err != nil {
		return err
	}
	if err := m.UpdateTiers(ctx); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Created the pod cgroup hierarchy", "kubepods", m.hierarchy.Literal(m.hierarchy.Kubepods()), "driver", m.cfg.Driver)
	return nil
}

// UpdateTiers writes the burstable and besteffort tiers' settings, from
// the node's active pods.
func (m *Manager) UpdateTiers(ctx context.Context) error {
	m.tiersMu.Lock()
	defer m.tiersMu.Unlock()
	var active []*v1.Pod
	if m.cfg.Pods != nil {
		for _, p := range m.cfg.Pods() {
			if ActivePod(p) {
				active = append(active, p)
			}
		}
	}
	return errors.Join(
		m.cgroups.Apply(m.hierarchy.Tier(v1.PodQOSBurstable), BurstableConfig(active, m.cfg.QOS)),
		m.cgroups.Apply(m.hierarchy.Tier(v1.PodQOSBestEffort), BestEffortConfig()),
	)
}

// EnsurePod creates or updates the pod's cgroup and returns its name in
// the driver's syntax, the sandbox's CRI cgroup_parent. A new pod updates
// the QoS tiers first, as the kubelet's, so the burstable tier's shares
// count it.
func (m *Manager) EnsurePod(ctx context.Context, pod *v1.Pod) (string, error) {
	qos := m.cfg.QOS(pod)
	name := m.hierarchy.Pod(qos, pod.UID)
	if !m.cgroups.Exists(name) {
		if err := m.UpdateTiers(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to update the QoS cgroups")
		}
	}
	if err := m.cgroups.Apply(name, PodResourceConfig(pod, qos, m.cfg.PodPidsLimit)); err != nil {
		return "", err
	}
	return m.hierarchy.Literal(name), nil
}

// RemovePod removes the pod's cgroup, whichever tier holds it; a pod
// without one is no error. Its processes must be gone.
func (m *Manager) RemovePod(ctx context.Context, uid types.UID) error {
	var errs []error
	for _, qos := range []v1.PodQOSClass{v1.PodQOSGuaranteed, v1.PodQOSBurstable, v1.PodQOSBestEffort} {
		name := m.hierarchy.Pod(qos, uid)
		if !m.cgroups.Exists(name) {
			continue
		}
		if err := m.cgroups.Destroy(name); err != nil {
			errs = append(errs, err)
			continue
		}
		klog.FromContext(ctx).V(2).Info("Removed pod cgroup", "podUID", uid, "cgroup", m.hierarchy.Literal(name))
	}
	return errors.Join(errs...)
}

// Sweep removes the cgroups of pods for which has answers false: gone
// from the API and from the runtime. Failures are logged; the next sweep
// tries again.
func (m *Manager) Sweep(ctx context.Context, has func(types.UID) bool) {
	logger := klog.FromContext(ctx)
	for _, tier := range m.hierarchy.Tiers() {
		dirs, err := m.cgroups.Children(tier)
		if err != nil {
			logger.Error(err, "Failed to list pod cgroups", "cgroup", m.hierarchy.Literal(tier))
		}
		for _, d := range dirs {
			uid, ok := PodUIDFromDir(d)
			if !ok || has(uid) {
				continue
			}
			logger.Info("Removing the cgroup of a pod that no longer exists", "podUID", uid)
			if err := m.RemovePod(ctx, uid); err != nil {
				logger.Error(err, "Failed to remove orphaned pod cgroup", "podUID", uid)
			}
		}
	}
}

// Run sweeps orphaned pod cgroups and updates the QoS tiers every period
// until ctx ends, starting at once.
func (m *Manager) Run(ctx context.Context, period time.Duration, has func(types.UID) bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		m.Sweep(ctx, has)
		if err := m.UpdateTiers(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to update the QoS cgroups")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
