package kuberuntime

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// PodSyncer syncs one pod; Syncer is the real one.
type PodSyncer interface {
	SyncPod(ctx context.Context, uid types.UID) (time.Duration, error)
}

// WorkerConfig tunes the workers.
type WorkerConfig struct {
	// Workers is how many pods sync in parallel.
	Workers int
	// Resync is how often every pod syncs without any event, to refresh
	// volumes (configMaps, secrets, tokens) and catch anything missed.
	Resync time.Duration
	// RelistPeriod is how often the runtime is listed to notice container
	// state changes (exits above all), as the kubelet's PLEG.
	RelistPeriod time.Duration
	// Clock times the health checks; nil is the real clock.
	Clock clock.PassiveClock
}

// Workers runs per-pod syncs. Any trigger (pod informer, relist, retry,
// timer) only enqueues the pod's UID; the queue guarantees one sync at a
// time per pod and lets different pods sync in parallel. A sync that
// returns an error is retried with per-pod exponential backoff; one that
// returns a delay is synced again after it.
type Workers struct {
	cfg     WorkerConfig
	syncer  PodSyncer
	runtime Runtime
	queue   workqueue.TypedRateLimitingInterface[types.UID]
	clock   clock.PassiveClock

	healthMu sync.Mutex
	health   healthClock

	mu       sync.Mutex
	lastSeen map[string]seenObject // by CRI object ID, from the last relist
}

// seenObject is a sandbox or container as one relist saw it.
type seenObject struct {
	state string
	pod   types.UID
}

// NewWorkers returns Workers that sync pods with syncer.
func NewWorkers(cfg WorkerConfig, syncer PodSyncer, rt Runtime) *Workers {
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](500*time.Millisecond, 30*time.Second),
	)
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Workers{
		cfg:      cfg,
		clock:    clk,
		syncer:   syncer,
		runtime:  rt,
		queue:    workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pods"}),
		lastSeen: map[string]seenObject{},
	}
}

// Enqueue asks for a sync of the pod with that UID.
func (w *Workers) Enqueue(uid types.UID) { w.queue.Add(uid) }

// Run processes the queue and relists the runtime until ctx ends.
func (w *Workers) Run(ctx context.Context) {
	defer w.queue.ShutDown()
	now := w.clock.Now()
	w.healthMu.Lock()
	w.health.started = now
	w.healthMu.Unlock()
	var wg sync.WaitGroup
	for range max(w.cfg.Workers, 1) {
		wg.Go(func() {
			for w.processNext(ctx) {
			}
		})
	}
	wg.Go(func() { wait.UntilWithContext(ctx, w.relist, w.cfg.RelistPeriod) })
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
}

func (w *Workers) processNext(ctx context.Context) bool {
	uid, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(uid)
	w.markProgress()
	after, err := w.syncer.SyncPod(ctx, uid)
	w.markProgress()
	switch {
	case err != nil && ctx.Err() == nil:
		if !errors.Is(err, errRetry) {
			klog.FromContext(ctx).Error(err, "Failed to sync pod", "podUID", uid)
		}
		w.queue.AddRateLimited(uid)
		return true
	case err == nil:
		w.queue.Forget(uid)
	}
	next := w.cfg.Resync
	if after > 0 && (next == 0 || after < next) {
		next = after
	}
	if next > 0 {
		w.queue.AddAfter(uid, next)
	}
	return true
}

// relist lists every sandbox and container of the runtime and enqueues the
// pods whose objects appeared, vanished or changed state since the last
// relist. It also finds pods that exist only in the runtime (deleted while
// the agent was down), whose sync removes them.
func (w *Workers) relist(ctx context.Context) {
	// Stamped when it began, as the kubelet's PLEG: a relist that takes
	// long shows as late.
	start := w.clock.Now()
	sandboxes, err := w.runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Relist failed", "err", err)
		return
	}
	containers, err := w.runtime.ListContainers(ctx, nil)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Relist failed", "err", err)
		return
	}
	seen := make(map[string]seenObject, len(sandboxes)+len(containers))
	for _, s := range sandboxes {
		if uid := s.GetLabels()[criconfig.LabelPodUID]; uid != "" {
			seen[s.GetId()] = seenObject{s.GetState().String(), types.UID(uid)}
		}
	}
	for _, c := range containers {
		if uid := c.GetLabels()[criconfig.LabelPodUID]; uid != "" {
			seen[c.GetId()] = seenObject{c.GetState().String(), types.UID(uid)}
		}
	}
	w.healthMu.Lock()
	w.health.relisted = start
	w.healthMu.Unlock()
	w.mu.Lock()
	prev := w.lastSeen
	w.lastSeen = seen
	w.mu.Unlock()
	changed := map[types.UID]bool{}
	for id, o := range seen {
		if prev[id] != o {
			changed[o.pod] = true
		}
	}
	// An object that vanished (removed behind the agent's back, or by
	// another sync) changes its pod too.
	for id, o := range prev {
		if _, ok := seen[id]; !ok {
			changed[o.pod] = true
		}
	}
	for uid := range changed {
		w.queue.Add(uid)
	}
}
