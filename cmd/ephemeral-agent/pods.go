package main

import (
	"context"
	"fmt"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/admission"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/cm"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criinstrument"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/images"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/node"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/objectcache"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podsource"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/prober"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/runtimeclass"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/servicenv"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/status"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/volume"
)

// podMachinery is everything that runs pods: the pod informer, the per-pod
// workers and sync loop, the status sender and the event broadcaster.
type podMachinery struct {
	source      *podsource.Source
	workers     *kuberuntime.Workers
	syncer      *kuberuntime.Syncer
	lookup      *podstate.Lookup
	status      *status.Manager
	volumes     *volume.Manager
	objects     *objectcache.Manager
	cgroups     *cm.Manager // nil without --cgroups-per-qos
	broadcaster record.EventBroadcaster
	// services is the informer on all Services, for the containers'
	// service variables; servicesSynced tells when its cache is filled.
	services       informers.SharedInformerFactory
	servicesSynced cache.InformerSynced
	// nodes is the informer on this node's Node, for admission.
	nodes       informers.SharedInformerFactory
	nodesSynced cache.InformerSynced
	// namespaces is the informer on Namespaces for the debug policy's
	// selectors; nil without a policy.
	namespaces informers.SharedInformerFactory
	// closeEvents closes the runtime event source's own connection.
	closeEvents func()
	// cacheSyncTimeout and statusWorkers are the flags run needs.
	cacheSyncTimeout time.Duration
	statusWorkers    int
}

func newPodMachinery(ctx context.Context, o *options, clients apiClients, runtime internalapi.RuntimeService, criMetrics *criinstrument.Metrics, machine node.MachineInfo, localNode func() *v1.Node, reg prometheus.Registerer, debug debugControl, targets kuberuntime.TargetNamespaces) (*podMachinery, error) {
	imageService, err := remote.NewRemoteImageServiceBuilder().
		WithEndpoint(o.containerRuntimeEndpoint).
		WithConnectionTimeout(o.runtimeRequestTimeout).
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to image service: %w", err)
	}
	// The pulls' connection is counted with the others.
	imageService = criMetrics.ImageService(imageService)
	// Informers watch through a client without a request timeout; every
	// other call goes through one with.
	client := clients.api
	runtimeName := "containerd"
	if v, err := runtime.Version(ctx, ""); err == nil && v.GetRuntimeName() != "" {
		runtimeName = v.GetRuntimeName()
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	// Events carry the kubelet's source, as the tools that read them expect.
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: o.nodeName})
	// The object cache's single-object watches must outlive the request
	// timeout: they go through the informers' client.
	objects := objectcache.New(ctx, clients.watch)
	api := apiObjects{client: client, objects: objects}
	clk := clock.RealClock{}

	// Runtime events notice container changes at once; the relist is
	// then a slow safety net.
	var events kuberuntime.EventSource
	observerOpts := []podstate.ObserverOption{}
	closeEvents := func() {}
	if o.runtimeEvents {
		var src eventSource
		if src, closeEvents, err = newEventSource(o.containerRuntimeEndpoint, runtime, reg); err != nil {
			return nil, err
		}
		// Exits the runtime announced are reported before its CRI
		// service records them.
		events, observerOpts = src, append(observerOpts, podstate.WithExits(src))
	}

	pm := &podMachinery{broadcaster: broadcaster, closeEvents: closeEvents, cacheSyncTimeout: o.cacheSyncTimeout, statusWorkers: o.statusUpdateWorkers, objects: objects,
		volumes: volume.NewManager(o.rootDir, api, clk, volume.WithNodeAllocatable(nodeAllocatable(o, machine)))}
	// Mount propagation into containers needs the root directory shared.
	if err := pm.volumes.PrepareRootDir(ctx); err != nil {
		return nil, fmt.Errorf("prepare root dir: %w", err)
	}
	if pm.source, err = podsource.New(clients.watch, o.nodeName); err != nil {
		return nil, err
	}
	if pm.cgroups, err = newPodCgroups(ctx, o, runtime, machine, pm.source.Pods); err != nil {
		return nil, err
	}
	// Service variables, as the kubelet's, from every namespace's
	// Services (the default namespace's kubernetes one for every pod).
	pm.services = informers.NewSharedInformerFactory(clients.watch, 0)
	serviceInformer := pm.services.Core().V1().Services()
	pm.servicesSynced = serviceInformer.Informer().HasSynced
	serviceEnv := servicenv.NewEnv(serviceInformer.Lister(), pm.servicesSynced)
	// RuntimeClasses come from the same factory: run starts it, and a
	// class not yet in the cache fails the sandbox, which is retried.
	runtimeClasses := runtimeclass.NewResolver(pm.services.Node().V1().RuntimeClasses().Lister())
	// Admission reads the Node as the API holds it: labels and taints
	// others set count.
	pm.nodes = informers.NewSharedInformerFactoryWithOptions(clients.watch, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", o.nodeName).String()
	}))
	nodeInformer := pm.nodes.Core().V1().Nodes()
	pm.nodesSynced = nodeInformer.Informer().HasSynced
	gate := admission.NewGate(admission.GateConfig{
		Pods:   pm.source,
		Node:   nodeSource{name: o.nodeName, lister: nodeInformer.Lister(), client: client, local: localNode}.get,
		OS:     goruntime.GOOS,
		Volume: volume.Supported,
	})
	// Start records live in the pods' directories beside their volumes, so
	// they go with the pod's directory, and only then.
	records := podstate.NewRecordStore(filepath.Join(o.rootDir, "pods"))
	observer := podstate.NewObserver(runtime, append(observerOpts, podstate.WithRecords(records))...)
	pm.lookup = podstate.NewLookup(pm.source, observer)
	pm.status = status.NewManager(client, pm.source, recorder, status.NodeInfo{HostIPs: []string{o.nodeIP}, RuntimeName: runtimeName}, clk)
	// Pulls start only in syncs, which run starts after pm.workers is set
	// below: a finished pull always has workers to enqueue its pods with.
	pulls := images.NewBackground(ctx, images.NewPuller(imageService, recorder, images.NewBackoff()), o.imagePullTimeout,
		func(uid types.UID) { pm.workers.Enqueue(uid) })
	// Probes run only for containers a sync saw running, after pm.workers
	// is set below: a verdict always has workers to enqueue its pod with.
	probes := prober.NewManager(ctx, prober.Options{
		Runtime:    runtime,
		Recorder:   recorder,
		OnChange:   func(uid types.UID) { pm.workers.Enqueue(uid) },
		Registerer: reg,
		NodeIPs:    []string{o.nodeIP},
	})
	decider, namespaces := newDebugPolicy(clients.watch, debug.policy)
	pm.namespaces = namespaces
	var debugDecider kuberuntime.DebugPolicy
	if decider != nil {
		debugDecider = decider
	}
	pm.syncer = kuberuntime.NewSyncer(kuberuntime.Config{
		PodLogsDir: o.podLogsDir,
		RootDir:    o.rootDir,
		NodeName:   o.nodeName,
		NodeIPs:    []string{o.nodeIP},
		DNS:        criconfig.DNSOptions{ClusterDNS: o.clusterDNS, ClusterDomain: o.clusterDomain, ResolvConf: o.resolvConf, NodeIPs: []string{o.nodeIP}},
		Node:       nodeConfig(o, machine),
	}, kuberuntime.Deps{
		Runtime:  runtime,
		Pods:     pm.source,
		Images:   pulls,
		Volumes:  volumes{pm.volumes},
		Secrets:  api,
		Status:   pm.status,
		Recorder: recorder,
		Clock:    clk,
		Services: serviceEnv,
		Records:  records,
		Observer: observer,
		Metrics:  kuberuntime.NewMetrics(reg),
		Prober:   probes,

		RuntimeClasses: runtimeClasses,
		Gate:           gate,
		Cgroups:        pm.podCgroups(),
		DebugPolicy:    debugDecider,
		Sessions:       debug.sessions,
		Audit:          debug.audit,
		Pids:           containerPids{runtime: runtime},

		TargetNamespaces: targets,
	})
	pm.workers = kuberuntime.NewWorkers(kuberuntime.WorkerConfig{
		Workers:                   o.podSyncWorkers,
		Resync:                    o.syncFrequency,
		RelistPeriod:              o.relistPeriod,
		RelistPeriodWithoutEvents: o.relistPeriodNoEvents,
		Events:                    events,
		Registerer:                reg,
	}, registeringSyncer{PodSyncer: pm.syncer, pods: pm.source, objects: objects}, runtime)
	if err := pm.source.OnChange(pm.workers.Enqueue, skipOwnWrites(pm.source, pm.status, pm.workers.EnqueueStatusChange)); err != nil {
		return nil, err
	}
	// Events have an API budget of their own (clients.events): every
	// failed probe is an Event, and they must not hold back status updates
	// behind the client's rate limit.
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clients.events.CoreV1().Events("")})
	return pm, nil
}

// run starts the informers, waits for their caches (so no pod is mistaken
// for deleted and the first containers get their service variables), then
// syncs pods until ctx ends.
func (pm *podMachinery) run(ctx context.Context) error {
	defer pm.broadcaster.Shutdown()
	defer pm.objects.Stop()
	defer pm.closeEvents()
	go pm.source.Run(ctx)
	// The Service informer stops with run, whatever ends it.
	servicesCtx, stopServices := context.WithCancel(ctx)
	defer pm.services.Shutdown()
	defer stopServices()
	pm.services.StartWithContext(servicesCtx)
	defer pm.nodes.Shutdown()
	pm.nodes.StartWithContext(servicesCtx)
	if pm.namespaces != nil {
		// Not waited for: debug containers wait for it (see debugPolicy),
		// nothing else does.
		defer pm.namespaces.Shutdown()
		pm.namespaces.StartWithContext(servicesCtx)
	}
	if !pm.source.WaitForSync(ctx, pm.cacheSyncTimeout) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pod cache did not sync")
	}
	// As the kubelet, a Service cache that is late does not hold the
	// agent: containers fail to start (CreateContainerConfigError, retried)
	// until it is filled, rather than start without their variables.
	if !waitForCacheSync(ctx, pm.cacheSyncTimeout, pm.servicesSynced) {
		if ctx.Err() != nil {
			return nil
		}
		klog.FromContext(ctx).Error(nil, "Service cache did not sync; containers wait for it to start")
	}
	// Pods are admitted on the Node the agent registers until the API's
	// is known.
	if !waitForCacheSync(ctx, pm.cacheSyncTimeout, pm.nodesSynced) && ctx.Err() == nil {
		klog.FromContext(ctx).Error(nil, "Node cache did not sync; pods are admitted on the node as the agent registers it")
	}
	klog.FromContext(ctx).Info("Pod cache synced", "pods", len(pm.source.Pods()))
	for _, p := range pm.source.Pods() {
		pm.workers.Enqueue(p.UID)
	}
	if err := pm.volumes.CleanupOrphans(ctx, func(uid types.UID) bool { return pm.syncer.HasPod(ctx, uid) }); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to clean up orphaned pod volumes")
	}
	if pm.cgroups != nil {
		go pm.cgroups.Run(ctx, time.Minute, func(uid types.UID) bool { return pm.syncer.HasPod(ctx, uid) })
	}
	go pm.status.Run(ctx, pm.statusWorkers)
	pm.workers.Run(ctx)
	return nil
}

// ownWrites tells the status manager's own writes among the informer's
// pods.
type ownWrites interface {
	OwnWrite(pod *v1.Pod) bool
}

// skipOwnWrites returns the handler of a pod's status-only updates: it
// passes the pod on to enqueue unless the cache holds it as the status
// manager's own last write. The agent's every status patch comes back so;
// syncing the pod for it would only compute the status just sent. Another
// writer's change (a readiness gate's condition, say) gives another
// resourceVersion and syncs the pod as before.
func skipOwnWrites(pods kuberuntime.PodSource, own ownWrites, enqueue func(types.UID)) func(types.UID) {
	return func(uid types.UID) {
		if pod, ok := pods.GetPodByUID(uid); ok && own.OwnWrite(pod) {
			return
		}
		enqueue(uid)
	}
}

// waitForCacheSync waits at most timeout for synced.
func waitForCacheSync(ctx context.Context, timeout time.Duration, synced cache.InformerSynced) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cache.WaitForCacheSync(ctx.Done(), synced)
}

// nodeConfig describes the machine to the config builder: cgroup version,
// swap accounting and capacity decide container resources and OOM scores.
func nodeConfig(o *options, machine node.MachineInfo) criconfig.NodeConfig {
	mem := machine.Capacity[v1.ResourceMemory]
	return criconfig.NodeConfig{
		CgroupV2:           machine.CgroupV2,
		SwapController:     machine.SwapAccounting,
		MemoryCapacity:     mem.Value(),
		Allocatable:        nodeAllocatable(o, machine),
		SeccompProfileRoot: filepath.Join(o.rootDir, "seccomp"),
	}
}

// nodeAllocatable is the node's allocatable, as its status reports it:
// what the downward API gives a container without limits, as the
// kubelet's.
func nodeAllocatable(o *options, machine node.MachineInfo) v1.ResourceList {
	kubeReserved, systemReserved, evictionHard := o.reservations()
	return node.Allocatable(machine.Capacity, kubeReserved, systemReserved, evictionHard)
}

// nodeSource gives admission the Node: as the API holds it (a fresh get
// when asked), else as the agent registers it, as the kubelet's
// getNodeAnyWay.
type nodeSource struct {
	name   string
	lister corelisters.NodeLister
	client kubernetes.Interface
	local  func() *v1.Node
}

func (n nodeSource) get(ctx context.Context, fresh bool) *v1.Node {
	if fresh {
		if node, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{}); err == nil {
			return node
		}
	}
	if node, err := n.lister.Get(n.name); err == nil {
		return node
	}
	return n.local()
}

// volumes adapts the volume manager to the sync loop's interface.
type volumes struct{ m *volume.Manager }

func (v volumes) SetUp(ctx context.Context, pod *v1.Pod) (kuberuntime.Mounter, error) {
	return v.m.SetUp(ctx, pod)
}

func (v volumes) TearDown(ctx context.Context, uid types.UID) error { return v.m.TearDown(ctx, uid) }
