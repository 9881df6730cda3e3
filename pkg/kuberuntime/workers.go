package kuberuntime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/queuemetrics"
)

// PodSyncer syncs one pod; Syncer is the real one.
type PodSyncer interface {
	SyncPod(ctx context.Context, uid types.UID) (SyncResult, error)
}

// SyncResult is what a successful sync asks of the workers.
type SyncResult struct {
	// RequeueAfter is when the pod wants its next sync without any event
	// (a crash-loop backoff expiry, its active deadline); 0: none, the
	// resync period alone applies.
	RequeueAfter time.Duration
	// Gone says nothing of the pod is left: it is not in the API, the
	// runtime holds nothing of it and its volumes are torn down. The
	// workers then forget it (no resync, no backoff): only a new trigger
	// (an informer event, a relist that finds an object of it) syncs its
	// UID again. Without it, every pod ever seen would cost CRI calls every
	// resync period forever.
	Gone bool
}

// WorkerClock is the clock Workers time syncs and retries with;
// k8s.io/utils/clock's RealClock and its testing.FakeClock satisfy it.
type WorkerClock interface {
	clock.WithTicker
	AfterFunc(d time.Duration, f func()) clock.Timer
}

// WorkerConfig tunes the workers.
type WorkerConfig struct {
	// Workers is how many pods sync in parallel.
	Workers int
	// Resync is how often every pod syncs without any event, to refresh
	// volumes (configMaps, secrets, tokens) and catch anything missed.
	Resync time.Duration
	// RelistPeriod is how often the runtime is listed while Events is
	// connected: the events notice container state changes (exits above
	// all), the relist is the safety net for anything they missed.
	RelistPeriod time.Duration
	// RelistPeriodWithoutEvents is how often the runtime is listed while
	// no event stream is connected (no Events, a runtime that serves none,
	// a stream that broke): the relist alone notices container state
	// changes then, as the kubelet's PLEG every second. 0: RelistPeriod.
	RelistPeriodWithoutEvents time.Duration
	// Events, when set, watches the runtime's container lifecycle events;
	// Run runs it. nil: the relist alone notices changes.
	Events EventSource
	// Clock times the syncs, retries and health checks; nil is the real
	// clock.
	Clock WorkerClock
	// Registerer takes the queue's metrics (the workqueue_* ones, queue
	// name "pod_workers") and ephemeral_agent_tracked_pods; nil: none.
	// The names can be registered once per registry: one Workers each.
	Registerer prometheus.Registerer
}

// queueName names the sync queue in its workqueue_* metrics.
const queueName = "pod_workers"

// Workers runs per-pod syncs. Any trigger (pod informer, relist, retry,
// timer) only enqueues the pod's UID; the queue guarantees one sync at a
// time per pod and lets different pods sync in parallel. A sync that
// returns an error is retried with per-pod exponential backoff; one that
// returns a delay is synced again after it, or after the resync period. A
// pod whose sync reports it gone is forgotten: what the workers keep grows
// with the pods that exist, not with those that ever existed.
type Workers struct {
	cfg     WorkerConfig
	syncer  PodSyncer
	runtime Runtime
	clock   WorkerClock
	// limiter gives each failing pod its retry delay, growing with its
	// failures in a row.
	limiter workqueue.TypedRateLimiter[types.UID]
	queue   workqueue.TypedInterface[types.UID]
	// retries counts the failed syncs that were retried: the queue does
	// not, the workers time retries themselves.
	retries workqueue.CounterMetric

	healthMu sync.Mutex
	health   healthClock

	// relistNow asks the relist loop for a relist at once; one pending
	// request stands for any number.
	relistNow chan struct{}
	// eventsConnected says an event stream is connected: the relist
	// slows down to RelistPeriod.
	eventsConnected atomic.Bool

	mu       sync.Mutex
	lastSeen map[string]seenObject // by CRI object ID, from the last relist
	// timers holds the next timed sync of each pod that has one: a retry
	// after a failure, a backoff expiry or the resync. They are the
	// workers' own, not the queue's AddAfter, so that a pod that is gone
	// can be dropped from them.
	timers map[types.UID]*timedSync
}

// timedSync is one pod's next timed sync.
type timedSync struct {
	timer clock.Timer
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
	qcfg := workqueue.TypedQueueConfig[types.UID]{Name: queueName, Clock: clk}
	var retries workqueue.CounterMetric = noRetries{}
	if cfg.Registerer != nil {
		provider := queuemetrics.NewProvider(cfg.Registerer)
		qcfg.MetricsProvider = provider
		retries = provider.NewRetriesMetric(queueName)
	}
	w := &Workers{
		cfg:      cfg,
		syncer:   syncer,
		runtime:  rt,
		clock:    clk,
		limiter:  limiter,
		queue:    workqueue.NewTypedWithConfig(qcfg),
		retries:  retries,
		lastSeen: map[string]seenObject{},
		timers:   map[types.UID]*timedSync{},

		relistNow: make(chan struct{}, 1),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ephemeral_agent_tracked_pods",
			Help: "Pods the sync workers keep state of (a timed sync, a retry backoff, runtime objects seen by the last relist); it follows the pods that exist, not those that ever existed.",
		}, func() float64 { return float64(w.trackedPods()) }))
	}
	return w
}

// noRetries counts nothing, for Workers without metrics.
type noRetries struct{}

func (noRetries) Inc() {}

// Len returns how many pods wait in the queue for a sync; pods syncing now
// are not counted, nor those waiting for a timed sync or a retry.
func (w *Workers) Len() int { return w.queue.Len() }

// trackedPods returns how many pods the workers keep state of. A pod with
// a retry backoff has a timed sync too, except after Run returned, so the
// timers and the last relist tell them all.
func (w *Workers) trackedPods() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	pods := make(map[types.UID]struct{}, len(w.timers))
	for uid := range w.timers {
		pods[uid] = struct{}{}
	}
	for _, o := range w.lastSeen {
		pods[o.pod] = struct{}{}
	}
	return len(pods)
}

// Enqueue asks for a sync of the pod with that UID.
func (w *Workers) Enqueue(uid types.UID) { w.queue.Add(uid) }

// EnqueueStatusChange asks for a sync of the pod with that UID after a
// change of its status alone. A pod whose last sync failed waits for its
// retry instead: a failure changes the pod's status (a Waiting message
// that names the runtime's new container ID, say), whose write would
// otherwise sync the pod at once, fail again, and so on in a loop that
// bypasses the backoff and takes the runtime from every other pod.
func (w *Workers) EnqueueStatusChange(uid types.UID) {
	if w.limiter.NumRequeues(uid) > 0 {
		return
	}
	w.queue.Add(uid)
}

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
	wg.Go(func() { w.relistLoop(ctx) })
	if w.cfg.Events != nil {
		wg.Go(func() { w.cfg.Events.Run(ctx, eventSink{w}) })
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	w.stopTimers()
}

// stopTimers drops every timed sync.
func (w *Workers) stopTimers() {
	w.mu.Lock()
	uids := make([]types.UID, 0, len(w.timers))
	for uid := range w.timers {
		uids = append(uids, uid)
	}
	w.mu.Unlock()
	for _, uid := range uids {
		w.stopTimer(uid)
	}
}

func (w *Workers) processNext(ctx context.Context) bool {
	uid, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(uid)
	w.markProgress()
	start := w.clock.Now()
	res, err := w.syncer.SyncPod(ctx, uid)
	w.markProgress()
	klog.FromContext(ctx).V(4).Info("Synced pod", "podUID", uid, "took", w.clock.Since(start), "err", err)
	switch {
	case err != nil && ctx.Err() == nil:
		if !errors.Is(err, errRetry) {
			klog.FromContext(ctx).Error(err, "Failed to sync pod", "podUID", uid)
		}
		w.retries.Inc()
		// A retry backs off, but never past the time the sync asked for:
		// one container that keeps failing (a debugger whose target does
		// not run) must not delay what else of the pod is due (a
		// crash-looping container's restart after its back-off).
		next := w.limiter.When(uid)
		if res.RequeueAfter > 0 && res.RequeueAfter < next {
			next = res.RequeueAfter
		}
		w.syncAfter(uid, next)
	case err != nil:
		// The agent is stopping: no retry, nothing to time.
	case res.Gone:
		w.forget(uid)
	default:
		w.limiter.Forget(uid)
		next := w.cfg.Resync
		if after := res.RequeueAfter; after > 0 && (next == 0 || after < next) {
			next = after
		}
		w.syncAfter(uid, next)
	}
	return true
}

// syncAfter sets the pod's next timed sync to d from now (none when d is
// 0), replacing the one it had.
func (w *Workers) syncAfter(uid types.UID, d time.Duration) {
	w.stopTimer(uid)
	if d <= 0 {
		return
	}
	ts := &timedSync{}
	w.mu.Lock()
	w.timers[uid] = ts
	w.mu.Unlock()
	// The timer is started and stopped without w.mu held: a fake clock
	// runs timer functions under its own lock, and they take w.mu.
	t := w.clock.AfterFunc(d, func() {
		w.mu.Lock()
		current := w.timers[uid] == ts
		if current {
			delete(w.timers, uid)
		}
		w.mu.Unlock()
		if current {
			w.queue.Add(uid)
		}
	})
	w.mu.Lock()
	ts.timer = t
	w.mu.Unlock()
}

// stopTimer drops the pod's timed sync, if any.
func (w *Workers) stopTimer(uid types.UID) {
	w.mu.Lock()
	ts := w.timers[uid]
	delete(w.timers, uid)
	var t clock.Timer
	if ts != nil {
		t = ts.timer
	}
	w.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

// forget drops everything the workers keep of a pod that is gone: its
// backoff, its timed sync, and the objects the last relist saw of it,
// which the pod's removal made vanish and which must not trigger another
// sync of it.
func (w *Workers) forget(uid types.UID) {
	w.limiter.Forget(uid)
	w.stopTimer(uid)
	w.mu.Lock()
	for id, o := range w.lastSeen {
		if o.pod == uid {
			delete(w.lastSeen, id)
		}
	}
	w.mu.Unlock()
}

// relistLoop relists the runtime every relistPeriod, and at once when
// asked, until ctx ends.
func (w *Workers) relistLoop(ctx context.Context) {
	for {
		w.relist(ctx)
		t := w.clock.NewTimer(w.relistPeriod())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-w.relistNow:
			t.Stop()
		}
	}
}

// relistPeriod is the relist period in force: RelistPeriod while an event
// stream is connected, RelistPeriodWithoutEvents otherwise.
func (w *Workers) relistPeriod() time.Duration {
	if w.eventsConnected.Load() || w.cfg.RelistPeriodWithoutEvents <= 0 {
		return w.cfg.RelistPeriod
	}
	return w.cfg.RelistPeriodWithoutEvents
}

// requestRelist asks the relist loop for a relist at once; requests that
// come while one is pending are one.
func (w *Workers) requestRelist() {
	select {
	case w.relistNow <- struct{}{}:
	default:
	}
}

// podOf returns the pod the last relist saw the sandbox or container with
// that ID belong to.
func (w *Workers) podOf(id string) (types.UID, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.lastSeen[id]
	return o.pod, ok
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
