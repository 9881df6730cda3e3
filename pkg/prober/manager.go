package prober

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// Recorder emits Events (client-go's record.EventRecorder satisfies it).
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{})
}

// ReasonUnhealthy is the reason of the Warning Event of a failed probe.
const ReasonUnhealthy = "Unhealthy"

// Options configure a Manager.
type Options struct {
	// Runtime runs exec probes.
	Runtime Runtime
	// Recorder emits the Unhealthy Events.
	Recorder Recorder
	// OnChange is called with the pod's UID whenever a verdict of one of
	// its containers changes; the agent passes its pod workers' Enqueue.
	// It may be nil.
	OnChange func(types.UID)
	// Registerer registers prober_probe_total; nil registers nothing.
	Registerer prometheus.Registerer
	// NodeIPs are the node's addresses, the target of a host-network
	// pod's probes before its status names a pod IP.
	NodeIPs []string
	// Clock defaults to the real clock.
	Clock clock.WithTicker
}

// Manager runs the probes of the pods' running containers and keeps their
// verdicts. It is safe for concurrent use.
type Manager struct {
	ctx      context.Context
	runtime  Runtime
	recorder Recorder
	onChange func(types.UID)
	metrics  *metrics
	nodeIPs  []string
	clock    clock.WithTicker

	mu sync.Mutex
	// pods holds, by pod UID, the probed containers by container ID.
	pods map[types.UID]map[string]*container
	// byID holds the same containers by container ID.
	byID map[string]*container
	// names holds the pods' namespaces and names, whose probe counts go
	// with them.
	names map[types.UID]types.NamespacedName
}

// container is one running container being probed, and its verdicts.
type container struct {
	uid          types.UID
	name         string
	hasStartup   bool
	hasReadiness bool
	// started and ready are the startup and readiness verdicts.
	started, ready bool
	// failed is the probe whose failures passed its threshold.
	failed podstate.ProbeType
	// message is the last failure's output, for LivenessFailed.
	message string
	cancel  context.CancelFunc
}

// NewManager returns a Manager whose workers run until ctx ends.
func NewManager(ctx context.Context, o Options) *Manager {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Manager{
		ctx:      ctx,
		runtime:  o.Runtime,
		recorder: o.Recorder,
		onChange: o.OnChange,
		metrics:  newMetrics(o.Registerer),
		nodeIPs:  o.NodeIPs,
		clock:    o.Clock,
		pods:     map[types.UID]map[string]*container{},
		byID:     map[string]*container{},
		names:    map[types.UID]types.NamespacedName{},
	}
}

// UpdatePod starts the probes of the pod's running regular containers and
// sidecars that have none yet (a restarted container is a new container
// ID, with fresh workers), stops those of containers that no longer run,
// and returns the verdicts of every running one, by container ID. A
// container without probes is started and ready as soon as it runs.
func (m *Manager) UpdatePod(pod *v1.Pod, state *podstate.PodState) map[string]podstate.Probed {
	running := map[string]bool{}
	out := map[string]podstate.Probed{}
	sb := state.LatestSandbox()
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.pods[pod.UID]
	m.names[pod.UID] = types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	visit := func(typ criconfig.ContainerType, spec *v1.Container) {
		cur := state.Current(sb, typ, spec.Name)
		if cur == nil || !cur.Running() {
			return
		}
		running[cur.ID] = true
		c, ok := cs[cur.ID]
		if !ok {
			c = m.start(pod, state, typ, spec, cur)
			if cs == nil {
				cs = map[string]*container{}
				m.pods[pod.UID] = cs
			}
			cs[cur.ID] = c
			m.byID[cur.ID] = c
		}
		out[cur.ID] = c.probed()
	}
	for i := range pod.Spec.InitContainers {
		if podstate.IsSidecar(&pod.Spec.InitContainers[i]) {
			visit(criconfig.ContainerTypeInit, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		visit(criconfig.ContainerTypeRegular, &pod.Spec.Containers[i])
	}
	for id, c := range cs {
		if !running[id] {
			c.cancel()
			delete(cs, id)
			delete(m.byID, id)
		}
	}
	if len(cs) == 0 {
		delete(m.pods, pod.UID)
	}
	return out
}

// ForgetPod stops every probe of a pod that is gone and drops its probe
// counts.
func (m *Manager) ForgetPod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.pods[uid] {
		c.cancel()
		delete(m.byID, id)
	}
	delete(m.pods, uid)
	if n, ok := m.names[uid]; ok {
		m.metrics.forget(n.Name, n.Namespace)
		delete(m.names, uid)
	}
}

// Ready reports whether the container with that ID is ready: its readiness
// probe succeeded last (or it has none and has started). An unknown
// container is not.
func (m *Manager) Ready(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[containerID]
	return ok && c.probed().Ready
}

// Started reports whether the container with that ID has started: its
// startup probe succeeded, or it has none. An unknown container has not.
func (m *Manager) Started(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[containerID]
	return ok && c.started
}

// LivenessFailed reports whether the container with that ID failed its
// liveness or startup probe past its failureThreshold, and the last
// failure's output.
func (m *Manager) LivenessFailed(containerID string) (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[containerID]
	if !ok || c.failed == "" {
		return false, ""
	}
	return true, c.message
}

func (c *container) probed() podstate.Probed {
	ready := c.started
	if c.hasReadiness {
		ready = c.started && c.ready
	}
	return podstate.Probed{Started: c.started, Ready: ready, Failed: c.failed}
}

// start creates the entry of a running container and its workers. m.mu is
// held.
func (m *Manager) start(pod *v1.Pod, state *podstate.PodState, typ criconfig.ContainerType, spec *v1.Container, cur *podstate.Container) *container {
	ctx, cancel := context.WithCancel(m.ctx)
	c := &container{
		uid:          pod.UID,
		name:         spec.Name,
		hasStartup:   spec.StartupProbe != nil,
		hasReadiness: spec.ReadinessProbe != nil,
		started:      spec.StartupProbe == nil,
		cancel:       cancel,
	}
	if spec.StartupProbe != nil && reportedStarted(pod, spec.Name, cur.ID) {
		// Started before the agent restarted: the startup probe is not
		// run again (its failure would kill a container that started).
		c.started = true
	}
	target := m.podIP(pod, state)
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "podUID", pod.UID, "containerName", spec.Name, "containerID", cur.ID)
	for _, p := range []struct {
		typ   podstate.ProbeType
		probe *v1.Probe
	}{{podstate.Startup, spec.StartupProbe}, {podstate.Liveness, spec.LivenessProbe}, {podstate.Readiness, spec.ReadinessProbe}} {
		if p.probe == nil {
			continue
		}
		w := &worker{
			m: m, c: c, typ: p.typ, probe: p.probe, spec: spec.DeepCopy(),
			ref:         podstate.ContainerRef(pod, typ, spec.Name),
			containerID: cur.ID, startedAt: cur.StartedAt, podIP: target,
		}
		wctx := klog.NewContext(ctx, logger.WithValues("probeType", p.typ))
		go w.run(wctx)
	}
	return c
}

// reportedStarted reports whether the pod's status in the API says that
// container instance (by CRI ID) of name has started.
func reportedStarted(pod *v1.Pod, name, id string) bool {
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name && strings.HasSuffix(cs.ContainerID, "://"+id) && cs.Started != nil && *cs.Started {
				return true
			}
		}
	}
	return false
}

// podIP is where probes without a host go: the sandbox's address, the
// pod's reported one, or the node's for a host-network pod.
func (m *Manager) podIP(pod *v1.Pod, state *podstate.PodState) string {
	if sb := state.LatestSandbox(); sb != nil && len(sb.IPs) > 0 {
		return sb.IPs[0]
	}
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP
	}
	if len(m.nodeIPs) > 0 {
		return m.nodeIPs[0]
	}
	return ""
}

// setVerdict records a decided verdict of one probe, and tells the pod's
// owner when it changed. It reports whether the worker goes on probing:
// a startup probe stops once it succeeded, liveness and startup once they
// failed (the container is to be killed; its next instance gets new
// workers).
func (m *Manager) setVerdict(ctx context.Context, c *container, typ podstate.ProbeType, success bool, output string) bool {
	m.mu.Lock()
	before := c.probed()
	goOn := true
	switch {
	case typ == podstate.Readiness:
		c.ready = success
	case typ == podstate.Startup && success:
		c.started = true
		goOn = false
	case !success && c.failed == "":
		c.failed, c.message = typ, output
		goOn = false
	}
	after := c.probed()
	m.mu.Unlock()
	if before != after {
		klog.FromContext(ctx).V(1).Info("Probe verdict changed", "started", after.Started, "ready", after.Ready, "failed", after.Failed)
		if m.onChange != nil {
			m.onChange(c.uid)
		}
	}
	return goOn
}

// isStarted reads the container's startup verdict.
func (m *Manager) isStarted(c *container) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return c.started
}

// seconds turns a probe's seconds field into a duration, def when unset.
func seconds(s int32, def time.Duration) time.Duration {
	if s <= 0 {
		return def
	}
	return time.Duration(s) * time.Second
}
