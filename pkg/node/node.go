package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Runtime is the part of the CRI runtime service the node controller needs.
type Runtime interface {
	Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error)
	Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error)
}

// Images is the part of the CRI image service the node controller needs: the
// list of the node's images, reported in status.images.
type Images interface {
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
}

// VersionAnnotation is the Node annotation holding the agent's own version;
// status.nodeInfo.kubeletVersion holds the Kubernetes version it implements.
const VersionAnnotation = "ephemeral-agent.io/version"

// DefaultMaxImages is the kubelet's --node-status-max-images default: the
// number of images, largest first, reported in status.images.
const DefaultMaxImages = 50

// Config says which Node to register and how often to report on it.
type Config struct {
	// NodeName is the Node object's name.
	NodeName string
	// Hostname is reported as the Hostname address and the
	// kubernetes.io/hostname label.
	Hostname string
	// NodeIP is reported as the InternalIP address; the API server reaches
	// the agent's API there.
	NodeIP net.IP
	// Port is the agent's API port, reported in status.daemonEndpoints.
	Port int32
	// KubeletVersion is reported as status.nodeInfo.kubeletVersion: the
	// Kubernetes version whose kubelet the agent stands for (v1.37.2), which
	// version-skew tooling compares with the control plane's.
	KubeletVersion string
	// AgentVersion is the agent's own version, reported in the
	// VersionAnnotation.
	AgentVersion string
	// MaxImages caps status.images, as the kubelet's --node-status-max-images
	// (DefaultMaxImages): a negative value means no cap, 0 no images.
	MaxImages int
	// KubeReserved and SystemReserved are kept from allocatable for the
	// Kubernetes and system daemons, as the kubelet's --kube-reserved and
	// --system-reserved.
	KubeReserved, SystemReserved v1.ResourceList
	// EvictionHard are the hard eviction thresholds (--eviction-hard): they
	// are kept from allocatable too.
	EvictionHard []Threshold
	// RootDir is the agent's root directory: its file system is the nodefs
	// whose space and inodes DiskPressure watches. Empty: no resource is
	// measured and no pressure reported.
	RootDir string
	// PressureTransitionPeriod is how long a pressure condition stays true
	// after the pressure ended (--eviction-pressure-transition-period).
	PressureTransitionPeriod time.Duration
	// Labels are added to the Node at registration, beside the kubelet's
	// well-known ones.
	Labels map[string]string
	// StatusUpdateFrequency is how often the runtime's health is checked and
	// a changed status sent.
	StatusUpdateFrequency time.Duration
	// StatusReportFrequency is the longest time between two status patches
	// when nothing changes. The Lease carries the heartbeat meanwhile.
	StatusReportFrequency time.Duration
	// LeaseDuration is the node Lease's duration; it is renewed every
	// quarter of it, as the kubelet does.
	LeaseDuration time.Duration
	// RuntimeStatusTimeout bounds one CRI Status call.
	RuntimeStatusTimeout time.Duration
	// Conditions add node conditions of types the agent owns beside the
	// kubelet's (the TARGET preflight's, say); may be empty.
	Conditions []ConditionSource
	// RemovedConditions are condition types the agent owns but does not
	// report in this configuration (a feature turned off): an earlier
	// run's condition of such a type is removed from the Node rather than
	// left stale.
	RemovedConditions []v1.NodeConditionType
}

// ConditionSource gives node conditions of its own types, without
// timestamps; the controller reports them with its own conditions and sends
// a status when they change. It is called at every status update and must
// be safe for concurrent use.
type ConditionSource interface {
	NodeConditions() []v1.NodeCondition
}

// Controller registers the Node and keeps its status and Lease current.
type Controller struct {
	cfg     Config
	client  kubernetes.Interface
	runtime Runtime
	images  Images
	machine MachineInfo
	clock   clock.Clock
	// read measures the node's resource levels; nil without a RootDir.
	read func() (Readings, error)

	mu         sync.Mutex
	health     RuntimeHealth
	lastReport time.Time
	reported   []v1.NodeCondition
	runtimeVer string
	// nodeImages is the image list last read from the runtime, largest
	// first; reportedImages the one last sent.
	nodeImages     []v1.ContainerImage
	reportedImages []v1.ContainerImage
	// pressure is the resource pressure to report, pressureSeen when each
	// was last observed.
	pressure     Pressure
	pressureSeen pressureMemory
}

// NewController returns a Controller for cfg. It does nothing until Run.
func NewController(cfg Config, client kubernetes.Interface, runtime Runtime, images Images, machine MachineInfo, clk clock.Clock) *Controller {
	c := &Controller{cfg: cfg, client: client, runtime: runtime, images: images, machine: machine, clock: clk}
	if cfg.RootDir != "" {
		c.read = func() (Readings, error) { return ReadReadings(cfg.RootDir) }
	}
	return c
}

// RuntimeHealth returns the runtime's health as last observed.
func (c *Controller) RuntimeHealth() RuntimeHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.health
}

// Run registers the Node, retrying until it succeeds, then keeps its status
// and Lease current until ctx ends. It returns nil when ctx ends and an
// error only when the node cannot be registered at all.
func (c *Controller) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("node", c.cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)

	c.observeRuntime(ctx)
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 7 * time.Second, Steps: 1 << 30},
		func(ctx context.Context) (bool, error) {
			if err := c.register(ctx); err != nil {
				logger.Error(err, "Unable to register node with API server")
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("register node %s: %w", c.cfg.NodeName, err)
	}
	logger.Info("Registered node")

	var wg sync.WaitGroup
	wg.Go(func() { c.newLeaseController(ctx).Run(ctx) })
	wg.Go(func() {
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			c.observeRuntime(ctx)
			if err := c.syncStatus(ctx); err != nil {
				logger.Error(err, "Error updating node status, will retry")
			}
		}, c.cfg.StatusUpdateFrequency)
	})
	wg.Wait()
	return nil
}

// observeRuntime asks the runtime for its health, its version and the
// node's images, and remembers them for the next status.
func (c *Controller) observeRuntime(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RuntimeStatusTimeout)
	defer cancel()
	var h RuntimeHealth
	resp, err := c.runtime.Status(ctx, false)
	if err != nil {
		h.Err = err
	} else {
		h.Status = resp.GetStatus()
	}
	var ver string
	if err == nil {
		if v, verr := c.runtime.Version(ctx, ""); verr == nil {
			ver = v.GetRuntimeName() + "://" + v.GetRuntimeVersion()
		}
	}
	c.mu.Lock()
	if h.Ready() != c.health.Ready() || (h.Err == nil) != (c.health.Err == nil) {
		klog.FromContext(ctx).Info("Container runtime health changed", "ready", h.Ready(), "problems", h.problems())
	}
	c.health = h
	if ver != "" {
		c.runtimeVer = ver
	}
	c.mu.Unlock()
	if err == nil {
		c.observeImages(ctx)
	}
	c.observePressure(ctx)
}

// observePressure measures the node's resource levels and remembers the
// pressure they show for the next status.
func (c *Controller) observePressure(ctx context.Context) {
	if c.read == nil {
		return
	}
	r, err := c.read()
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Unable to measure some node resources, they show no pressure", "err", err)
	}
	observed := observePressure(r, c.cfg.EvictionHard)
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pressureSeen.hold(observed, c.clock.Now(), c.cfg.PressureTransitionPeriod)
	if p != c.pressure {
		klog.FromContext(ctx).Info("Node resource pressure changed", "memory", p.Memory, "disk", p.Disk, "pid", p.PID)
	}
	c.pressure = p
}

// observeImages reads the node's images from the runtime for the next
// status. When the runtime does not answer, the last list read is kept: the
// images are still on disk, and the Ready condition tells the runtime's
// trouble.
func (c *Controller) observeImages(ctx context.Context) {
	if c.images == nil {
		return
	}
	imgs, err := c.images.ListImages(ctx, nil)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Unable to list the node's images, keeping the last list", "err", err)
		return
	}
	list := nodeImages(imgs, c.cfg.MaxImages)
	c.mu.Lock()
	c.nodeImages = list
	c.mu.Unlock()
}

// register creates the Node, or adopts an existing one of that name (the
// agent restarted, or the node was registered before): its labels are
// reconciled and its status is replaced by the next status sync.
func (c *Controller) register(ctx context.Context) error {
	want := c.initialNode()
	created, err := c.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		c.resetReport()
		return c.patchStatus(ctx, created)
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	existing, err := c.client.CoreV1().Nodes().Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get existing node: %w", err)
	}
	missing := map[string]string{}
	for k, v := range want.Labels {
		if existing.Labels[k] != v {
			missing[k] = v
		}
	}
	missingAnn := map[string]string{}
	for k, v := range want.Annotations {
		if existing.Annotations[k] != v {
			missingAnn[k] = v
		}
	}
	if len(missing) > 0 || len(missingAnn) > 0 {
		meta := map[string]any{}
		if len(missing) > 0 {
			meta["labels"] = missing
		}
		if len(missingAnn) > 0 {
			meta["annotations"] = missingAnn
		}
		patch, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			return fmt.Errorf("marshal label patch: %w", err)
		}
		if existing, err = c.client.CoreV1().Nodes().Patch(ctx, c.cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("patch node labels: %w", err)
		}
	}
	c.resetReport()
	return c.patchStatus(ctx, existing)
}

func (c *Controller) resetReport() {
	c.mu.Lock()
	c.reported = nil
	c.mu.Unlock()
}

func (c *Controller) initialNode() *v1.Node {
	labels := map[string]string{
		v1.LabelHostname:          c.cfg.Hostname,
		v1.LabelOSStable:          goruntime.GOOS,
		v1.LabelArchStable:        goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for k, v := range c.cfg.Labels {
		labels[k] = v
	}
	var annotations map[string]string
	if c.cfg.AgentVersion != "" {
		annotations = map[string]string{VersionAnnotation: c.cfg.AgentVersion}
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.cfg.NodeName, Labels: labels, Annotations: annotations}}
}

// syncStatus sends the node status when it changed, when the Node in the
// API says otherwise, or when the report interval has passed since the
// last one.
//
// The Node is read every period, as the kubelet does (from the API
// server's cache): another component may have rewritten a condition the
// agent owns. The node lifecycle controller marks Ready Unknown when it saw
// no heartbeat for its grace period (after an API server outage, say), and
// it never sets it back: only the agent's next patch does.
func (c *Controller) syncStatus(ctx context.Context) error {
	c.mu.Lock()
	want := c.desiredConditions()
	due := c.clock.Since(c.lastReport) >= c.cfg.StatusReportFrequency
	changed := conditionsChanged(c.reported, want) || !apiequality.Semantic.DeepEqual(c.reportedImages, c.nodeImages)
	c.mu.Unlock()
	node, err := c.client.CoreV1().Nodes().Get(ctx, c.cfg.NodeName, metav1.GetOptions{ResourceVersion: "0"})
	if apierrors.IsNotFound(err) {
		// Deleted behind our back: register again, as the kubelet does
		// after a restart.
		return c.register(ctx)
	}
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	if !changed && !due && !conditionsChanged(node.Status.Conditions, want) && !c.holdsRemoved(node.Status.Conditions) {
		return nil
	}
	return c.patchStatus(ctx, node)
}

// patchStatus sends the difference between node's status and the one the
// agent computes now, as a strategic merge patch on the status subresource.
func (c *Controller) patchStatus(ctx context.Context, node *v1.Node) error {
	now := metav1.NewTime(c.clock.Now())
	c.mu.Lock()
	updated := node.DeepCopy()
	c.setStatus(&updated.Status, now)
	c.mu.Unlock()

	oldJSON, err := json.Marshal(node)
	if err != nil {
		return fmt.Errorf("marshal node: %w", err)
	}
	newJSON, err := json.Marshal(updated)
	if err != nil {
		return fmt.Errorf("marshal node: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Node{})
	if err != nil {
		return fmt.Errorf("create node status patch: %w", err)
	}
	if _, err := c.client.CoreV1().Nodes().PatchStatus(ctx, c.cfg.NodeName, patch); err != nil {
		return fmt.Errorf("patch node status: %w", err)
	}
	c.mu.Lock()
	c.reported = updated.Status.Conditions
	c.reportedImages = updated.Status.Images
	c.lastReport = now.Time
	c.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Updated node status", "patch", string(patch))
	return nil
}

// setStatus fills s with the agent's view of the node at now. c.mu is held.
func (c *Controller) setStatus(s *v1.NodeStatus, now metav1.Time) {
	s.Capacity = c.machine.Capacity.DeepCopy()
	s.Allocatable = Allocatable(c.machine.Capacity, c.cfg.KubeReserved, c.cfg.SystemReserved, c.cfg.EvictionHard)
	s.Images = c.nodeImages
	s.Addresses = nil
	if c.cfg.NodeIP != nil {
		s.Addresses = append(s.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: c.cfg.NodeIP.String()})
	}
	s.Addresses = append(s.Addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: c.cfg.Hostname})
	s.DaemonEndpoints.KubeletEndpoint.Port = c.cfg.Port
	s.NodeInfo = v1.NodeSystemInfo{
		MachineID:               c.machine.MachineID,
		SystemUUID:              c.machine.SystemUUID,
		BootID:                  c.machine.BootID,
		KernelVersion:           c.machine.KernelVersion,
		OSImage:                 c.machine.OSImage,
		ContainerRuntimeVersion: c.runtimeVer,
		KubeletVersion:          c.cfg.KubeletVersion,
		OperatingSystem:         goruntime.GOOS,
		Architecture:            goruntime.GOARCH,
		// KubeProxyVersion stays empty, as the kubelet 1.37 leaves it: the
		// field is deprecated.
	}
	s.Conditions = slices.DeleteFunc(mergeConditions(s.Conditions, c.desiredConditions(), now), func(nc v1.NodeCondition) bool {
		return slices.Contains(c.cfg.RemovedConditions, nc.Type)
	})
}

// holdsRemoved reports whether cs holds a condition of a removed type.
func (c *Controller) holdsRemoved(cs []v1.NodeCondition) bool {
	return slices.ContainsFunc(cs, func(nc v1.NodeCondition) bool { return slices.Contains(c.cfg.RemovedConditions, nc.Type) })
}

// desiredConditions are the kubelet's conditions for the observed runtime
// health and pressure, then those of the configured sources. c.mu is held.
func (c *Controller) desiredConditions() []v1.NodeCondition {
	want := desiredConditions(c.health, c.pressure)
	for _, src := range c.cfg.Conditions {
		want = append(want, src.NodeConditions()...)
	}
	return want
}
