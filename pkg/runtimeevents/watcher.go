package runtimeevents

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Sink receives what the events ask for; kuberuntime's EventSink (the
// pod workers) satisfies it. Its methods must return at once.
type Sink interface {
	// Enqueue asks for a sync of the pod with that UID.
	Enqueue(uid types.UID)
	// Relist asks for a relist of the runtime at once.
	Relist()
	// Connected says whether an event stream is connected.
	Connected(connected bool)
	// PodOf returns the pod the last relist saw the object with that ID
	// belong to.
	PodOf(id string) (types.UID, bool)
}

// Runtime is the part of the CRI runtime service the watcher uses
// (k8s.io/cri-client's RuntimeService satisfies it): its container events,
// and the lists, filtered by ID, that map an object's ID to its pod. Lists
// rather than status calls: an ID may be a container's or a sandbox's, and
// a list answers one it does not hold with nothing, not an error.
type Runtime interface {
	GetContainerEvents(ctx context.Context, containerEventsCh chan *runtimeapi.ContainerEventResponse, connectionEstablishedCallback func(runtimeapi.RuntimeService_GetContainerEventsClient)) error
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
}

// Subscriber is containerd's event service as its Go client offers it
// (ContainerdEvents satisfies it, and so does *client.Client of
// github.com/containerd/containerd/v2/client): the subscription ends when
// errs yields an error or closes.
type Subscriber interface {
	Subscribe(ctx context.Context, filters ...string) (ch <-chan *events.Envelope, errs <-chan error)
}

// DefaultNamespace is the containerd namespace of the CRI plugin's objects.
const DefaultNamespace = "k8s.io"

// DefaultBackoff times the reopening of a broken stream: a runtime restart
// takes seconds, and a stream that cannot open costs one failed call per
// attempt.
var DefaultBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 10 * time.Second}

// Options configure a Watcher.
type Options struct {
	// Runtime is the CRI runtime; required.
	Runtime Runtime
	// Containerd, when set, is the source used when the CRI runtime does
	// not serve GetContainerEvents; nil: none, the relist alone then.
	Containerd Subscriber
	// Namespace is the containerd namespace watched; "": DefaultNamespace.
	Namespace string
	// Backoff times the reopening of a broken stream; zero: DefaultBackoff.
	Backoff wait.Backoff
	// Clock times the backoff; nil: the real clock.
	Clock clock.Clock
	// Registerer takes the watcher's metrics; nil: none.
	Registerer prometheus.Registerer
}

// Watcher watches the runtime's container lifecycle events and asks its
// sink to sync the pods they concern. It runs in one goroutine (plus the
// one a stream's client needs to receive), whatever the number of pods.
type Watcher struct {
	opts    Options
	clock   clock.Clock
	metrics *metrics
	// criUnsupported says the runtime answered Unimplemented to
	// GetContainerEvents: it is not asked again. Only Run touches it.
	criUnsupported bool

	// settling bounds the exits that wait for the CRI plugin at once
	// (settleAsync); settlers is the goroutines doing it, which Run
	// waits for.
	settling chan struct{}
	settlers sync.WaitGroup

	// mu guards known and exits.
	mu sync.Mutex
	// known maps IDs the runtime was asked about to their pod: a new
	// container is unknown to the last relist until the next one, and
	// its start, exit and deletion would each cost a lookup.
	known map[string]types.UID
	// exits holds the processes' exits containerd announced, by
	// container ID, until the container is removed (Exited).
	exits map[string]exit
}

// exit is what containerd announced of a container's process.
type exit struct {
	exited bool
	code   int32
	at     time.Time
	oom    bool
}

// maxSettling is how many exits may wait for the CRI plugin at once; one
// more waits in the event loop, which holds the stream back.
const maxSettling = 64

// maxKnown bounds the IDs remembered from lookups; past it they are
// forgotten at once, and looked up again when needed.
const maxKnown = 4096

// New returns a Watcher; Run starts it.
func New(o Options) *Watcher {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Backoff.Duration <= 0 {
		o.Backoff = DefaultBackoff
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Watcher{
		opts: o, clock: clk, metrics: newMetrics(o.Registerer),
		settling: make(chan struct{}, maxSettling), known: map[string]types.UID{}, exits: map[string]exit{},
	}
}

// errStreamEnded is a stream that closed without saying why.
var errStreamEnded = errors.New("event stream ended")

// Run watches events until ctx ends, reopening a broken stream with
// backoff. It returns early, leaving the relist alone, when no source
// serves events.
func (w *Watcher) Run(ctx context.Context, sink Sink) {
	defer w.settlers.Wait()
	logger := klog.FromContext(ctx)
	backoff := w.opts.Backoff
	for {
		source, watch := w.source()
		if watch == nil {
			logger.Info("No runtime event source; the relist alone notices container changes")
			return
		}
		started := w.clock.Now()
		connected, err := watch(ctx, sink)
		if connected {
			w.metrics.connected.Set(0)
			sink.Connected(false)
		}
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			// Only the CRI source can be done without: a runtime that
			// serves neither is relisted alone.
			logger.Info("Runtime does not serve these events", "source", source, "err", err)
			if source != SourceCRI {
				return
			}
			w.criUnsupported = true
			continue
		}
		// A stream that lived long broke for a new reason: reopen it
		// quickly again.
		if connected && w.clock.Since(started) >= backoff.Cap {
			backoff = w.opts.Backoff
		}
		delay := backoff.Step()
		logger.Info("Runtime event stream broke; reopening it", "source", source, "err", err, "delay", delay)
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(delay):
		}
	}
}

// watchFunc runs one stream until it breaks or ctx ends; connected says
// the sink was told it connected.
type watchFunc func(ctx context.Context, sink Sink) (connected bool, err error)

// source returns the source to watch next, nil if none is left.
func (w *Watcher) source() (string, watchFunc) {
	switch {
	case !w.criUnsupported:
		return SourceCRI, w.watchCRI
	case w.opts.Containerd != nil:
		return SourceContainerd, w.watchContainerd
	}
	return "", nil
}

// connect records that a stream of source connected and tells sink, which
// relists: anything that happened while no stream was open is found.
func (w *Watcher) connect(ctx context.Context, sink Sink, source string) {
	klog.FromContext(ctx).V(2).Info("Runtime event stream connected", "source", source)
	w.metrics.connects.WithLabelValues(source).Inc()
	w.metrics.connected.Set(1)
	sink.Connected(true)
}

// Bounds of settle's wait: the CRI plugin records an exit within
// milliseconds; a runtime that takes longer is left to the relist.
const (
	settleFirstStep = 5 * time.Millisecond
	settleMaxStep   = 200 * time.Millisecond
	settleTimeout   = 2 * time.Second
)

// settle waits, at most settleTimeout, until the CRI runtime no longer
// reports the container id running (a sandbox's id is no container: no
// wait). containerd publishes a task's deletion before its CRI plugin,
// which deleted it, records the exit (measured: 5 to 85 ms later): a sync
// triggered at once could still read the container running, and nothing
// else would trigger one until the next relist.
//
// It remembers the pod the listed container belongs to, so that resolving
// the exit next asks the runtime nothing more.
func (w *Watcher) settle(ctx context.Context, id string) {
	step := settleFirstStep
	deadline := w.clock.Now().Add(settleTimeout)
	for {
		cs, err := w.opts.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{Id: id})
		if err != nil || len(cs) == 0 {
			return
		}
		w.remember(id, podUID(cs[0].GetLabels()))
		if cs[0].GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || !w.clock.Now().Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(step):
		}
		step = min(2*step, settleMaxStep)
	}
}

// settleAsync settles the exit of container id, then resolves it, in a
// goroutine of its own: under load every CRI call takes long, and 20 exits
// at once settled one after the other would delay the last by seconds.
// Past maxSettling at once it does so in the caller's goroutine.
func (w *Watcher) settleAsync(ctx context.Context, sink Sink, id string) {
	select {
	case w.settling <- struct{}{}:
	default:
		w.settle(ctx, id)
		w.resolve(ctx, sink, id)
		return
	}
	w.settlers.Go(func() {
		defer func() { <-w.settling }()
		w.settle(ctx, id)
		w.resolve(ctx, sink, id)
	})
}

// remember records that id belongs to the pod with that UID; "" (an
// object that is not the agent's) is not recorded.
func (w *Watcher) remember(id string, uid types.UID) {
	if uid == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.known) >= maxKnown {
		clear(w.known)
	}
	w.known[id] = uid
}

// forget drops what lookups and events told of id, an object the runtime
// removed.
func (w *Watcher) forget(id string) {
	w.mu.Lock()
	delete(w.known, id)
	delete(w.exits, id)
	w.mu.Unlock()
}

// announce records that container id's process exited with code at at.
func (w *Watcher) announce(id string, code int32, at time.Time) {
	if at.Unix() <= 0 {
		// An event without a time: the runtime's own will be close.
		at = w.clock.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.exitEntry(id)
	e.exited, e.code, e.at = true, code, at
	w.exits[id] = e
}

// announceOOM records that the kernel OOM-killed a process of container
// id; containerd tells it before the exit.
func (w *Watcher) announceOOM(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.exitEntry(id)
	e.oom = true
	w.exits[id] = e
}

// exitEntry returns the entry of id, making room past maxKnown entries
// (their containers' exits are then left to the runtime to report). The
// caller holds w.mu.
func (w *Watcher) exitEntry(id string) exit {
	e, ok := w.exits[id]
	if !ok && len(w.exits) >= maxKnown {
		clear(w.exits)
	}
	return e
}

// Exited returns the exit of container id's process as containerd
// announced it, which its CRI plugin reports only tens of milliseconds
// later; it satisfies podstate.ExitSource.
func (w *Watcher) Exited(id string) (code int32, at time.Time, oom, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.exits[id]
	return e.code, e.at, e.oom, e.exited
}

// resolve asks for a sync of the pod of the sandbox or container id: the
// pod the last relist saw it in, else the one its labels name, else (an
// object already gone, or none the agent knows) a relist.
func (w *Watcher) resolve(ctx context.Context, sink Sink, id string) {
	if id == "" {
		sink.Relist()
		return
	}
	if uid, ok := sink.PodOf(id); ok {
		sink.Enqueue(uid)
		return
	}
	w.mu.Lock()
	uid, ok := w.known[id]
	w.mu.Unlock()
	if ok {
		sink.Enqueue(uid)
		return
	}
	uid, found := w.lookup(ctx, id)
	w.remember(id, uid)
	switch {
	case uid != "":
		sink.Enqueue(uid)
	case !found:
		sink.Relist()
	}
	// Found without a pod's label: not the agent's, nothing to sync.
}

// lookup asks the runtime which pod the container or sandbox id belongs
// to: its pod UID label, "" with found true for an object without one.
func (w *Watcher) lookup(ctx context.Context, id string) (uid types.UID, found bool) {
	if cs, err := w.opts.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{Id: id}); err == nil && len(cs) > 0 {
		return podUID(cs[0].GetLabels()), true
	}
	if ss, err := w.opts.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: id}); err == nil && len(ss) > 0 {
		return podUID(ss[0].GetLabels()), true
	}
	return "", false
}
