package images

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// errNoWaiter is the cause of a pull cancelled by ForgetPod.
var errNoWaiter = errors.New("no pod waits for the image any more")

// Background ensures images like Puller, but makes every pull outside the
// caller's goroutine, bounded by a deadline, so that no registry can hold a
// pod's sync (and the worker running it) for longer than an ImageStatus
// call. It is safe for concurrent use.
//
// Contract of EnsureImage, for a container (pod UID and ref.FieldPath) and
// an image as written in its spec:
//
//   - Whatever needs no registry is answered at once, exactly as
//     Puller.EnsureImage answers it, Events included: a present image under
//     IfNotPresent or Never (one ImageStatus call, in the caller's
//     goroutine), ErrImageNeverPull, InvalidImageName, ImageInspectError, a
//     malformed pull secret, and ImagePullBackOff while the pod's backoff
//     window for the image is open.
//   - Otherwise (policy Always, or an absent image under IfNotPresent) the
//     container waits for a pull, and EnsureImage returns a *PullingError
//     (Reason Pulling, message `pulling image "X"`) at once. If a pull with
//     the same key is running, the container joins it; else one starts in
//     its own goroutine. The key is the image as the runtime sees it (the
//     default tag added) and the identity of the credentials the pull
//     would use (the registry logins matched from the pod's pull secrets;
//     none for an anonymous pull): one pull per key at a time, pulls with
//     different keys in parallel, each bounded by the deadline.
//   - While the pull runs, every call for that container returns the
//     *PullingError, without touching the runtime.
//   - When the pull ends, its result is kept for every container still
//     waiting for it, and onDone is called once per pod UID among them.
//     The next call for each container returns the result, once: the image
//     reference; or the puller's *Error (ErrImagePull, RegistryUnavailable,
//     SignatureValidationFailed; a pull that outlived the deadline is an
//     ErrImagePull "pull did not finish within D: ..."), with the Warning
//     Event "Failed" "Error: REASON" on that container as Puller records
//     it. A failure opens the backoff window of every waiting pod, so the
//     call after that returns ImagePullBackOff until the window closes.
//     The call after a delivered result starts over (a new pull for Always).
//
// The pull's own Events (Pulling, then Pulled or "Failed to pull image")
// are recorded once per pull, on the container that started it; containers
// that joined get none of them. The pull uses that container's pod
// annotations and sandbox config too.
//
// ForgetPod ends a pod's waits; a pull that no container waits for any more
// is cancelled, which records no Failed Event and opens no backoff window.
//
// Everything stops when the constructor's context ends: running pulls are
// cancelled (abandoned, as above: the containers waiting get a plain error
// wrapping the context's cause), onDone is not called any more and
// EnsureImage starts no pull (it returns a plain error instead; what needs
// no registry is still answered). Each pull is one goroutine, which returns
// once its PullImage call returns: at the latest at the deadline or when
// the context ends, for a runtime client that honours its context (the CRI
// gRPC client does). Wait waits for them.
type Background struct {
	puller  *Puller
	timeout time.Duration
	onDone  func(uid types.UID)
	ctx     context.Context

	mu sync.Mutex
	// stopped is set by Wait: no pull starts any more.
	stopped bool
	// running are the pulls in progress, by key; a cancelled pull leaves at
	// once, so that a new caller starts a fresh one.
	running map[pullKey]*backgroundPull
	// waiting maps each waiting container to its pull, running or ended
	// (then until the container takes the result or its pod is forgotten).
	waiting map[waiter]*backgroundPull
	wg      sync.WaitGroup
}

// pullKey says which callers may share a pull.
type pullKey struct {
	// image is the image spec the runtime pulls (with the default tag).
	image string
	// creds identifies the credentials (credentialsID).
	creds string
}

// waiter is a container waiting for an image.
type waiter struct {
	pod types.UID
	// container is the Event reference's fieldPath ("" without one).
	container string
	// image is as written in the container's spec.
	image string
}

type backgroundPull struct {
	key    pullKey
	plan   *pullPlan
	cancel context.CancelCauseFunc
	// waiters are the containers waiting while the pull runs.
	waiters map[waiter]struct{}
	// ended, imageRef and err are the result, once the pull has ended.
	ended    bool
	imageRef string
	err      error
}

// NewBackground returns a Background making puller's pulls. timeout bounds
// each pull (its PullImage calls, every credential tried included) and must
// be positive. onDone (nil: none) is called, from the
// pull's goroutine and with no lock held, once per pod UID that waited for
// a pull when it ends; it should be quick (enqueue a sync). Pulls run until
// ctx ends at the latest.
func NewBackground(ctx context.Context, puller *Puller, timeout time.Duration, onDone func(uid types.UID)) *Background {
	if timeout <= 0 {
		panic(fmt.Sprintf("images.NewBackground: timeout must be positive, got %v", timeout))
	}
	if onDone == nil {
		onDone = func(types.UID) {}
	}
	return &Background{
		puller:  puller,
		timeout: timeout,
		onDone:  onDone,
		ctx:     ctx,
		running: map[pullKey]*backgroundPull{},
		waiting: map[waiter]*backgroundPull{},
	}
}

// EnsureImage makes image present according to policy, in the background
// when that needs a pull; see Background for the contract. Arguments are as
// for Puller.EnsureImage; pod must not be nil. ctx bounds only what is done
// in the caller's goroutine; a pull depends on the constructor's context,
// the deadline and ForgetPod, not on any caller's ctx.
func (b *Background) EnsureImage(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, image string, policy v1.PullPolicy, pullSecrets []v1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "image", image)
	ctx = klog.NewContext(ctx, logger)
	w := waiter{pod: pod.GetUID(), image: image}
	if ref != nil {
		w.container = ref.FieldPath
	}
	if imageRef, err, ok := b.take(w); ok {
		b.puller.failedEvent(ref, err)
		return imageRef, err
	}
	imageRef, plan, err := b.puller.prepare(ctx, ref, pod, image, policy, pullSecrets, sandboxConfig)
	if plan == nil {
		b.puller.failedEvent(ref, err)
		return imageRef, err
	}
	return "", b.join(ctx, w, plan)
}

// take returns what a container already waiting gets: the result of its
// ended pull (which it then no longer waits for), or a *PullingError while
// the pull runs. ok is false when the container waits for nothing.
func (b *Background) take(w waiter) (imageRef string, err error, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pl, ok := b.waiting[w]
	if !ok {
		return "", nil, false
	}
	if !pl.ended {
		return "", &PullingError{Image: w.image}, true
	}
	delete(b.waiting, w)
	return pl.imageRef, pl.err, true
}

// join makes w wait for the pull plan asks for, starting it unless one with
// the same key runs.
func (b *Background) join(ctx context.Context, w waiter, plan *pullPlan) error {
	key := pullKey{image: plan.spec.GetImage(), creds: credentialsID(authConfigs(plan.creds))}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.waiting[w]; ok {
		// A concurrent call for the same container joined meanwhile.
		return &PullingError{Image: w.image}
	}
	pl := b.running[key]
	if pl == nil {
		if b.stopped || b.ctx.Err() != nil {
			return fmt.Errorf("pull of image %q not started: the image puller is stopped: %w", w.image, context.Cause(b.ctx))
		}
		pullCtx, cancel := context.WithCancelCause(b.ctx)
		// The pull logs as its first caller's, but ends with b.ctx only.
		pullCtx = klog.NewContext(pullCtx, klog.FromContext(ctx))
		pl = &backgroundPull{key: key, plan: plan, cancel: cancel, waiters: map[waiter]struct{}{}}
		b.running[key] = pl
		b.wg.Go(func() { b.pull(pullCtx, pl) })
	} else {
		klog.FromContext(ctx).V(4).Info("Waiting for a running image pull")
	}
	pl.waiters[w] = struct{}{}
	b.waiting[w] = pl
	return &PullingError{Image: w.image}
}

// pull makes pl's pull and hands its result to the containers waiting.
func (b *Background) pull(ctx context.Context, pl *backgroundPull) {
	defer pl.cancel(nil)
	imageRef, err := b.puller.execute(ctx, pl.plan, b.timeout)
	var failure *Error
	errors.As(err, &failure)

	b.mu.Lock()
	pl.ended, pl.imageRef, pl.err = true, imageRef, err
	if b.running[pl.key] == pl {
		delete(b.running, pl.key)
	}
	var pods []types.UID
	seen := map[types.UID]bool{}
	for w := range pl.waiters {
		if failure != nil {
			// Under the lock, so that no waiter takes the failure and
			// calls again before its window is open.
			b.puller.recordFailure(ctx, backoffKey(w.pod, w.image), failure)
		}
		if !seen[w.pod] {
			seen[w.pod] = true
			pods = append(pods, w.pod)
		}
	}
	pl.waiters = nil
	b.mu.Unlock()

	if b.ctx.Err() != nil {
		return
	}
	for _, uid := range pods {
		b.onDone(uid)
	}
}

// ForgetPod ends every wait of the pod with that UID and drops its results
// and backoff windows: the pod is being deleted or is gone. A pull no
// container waits for any more is cancelled; one other pods wait for goes
// on. onDone is not called for the pod about the pulls it waited for. A
// later EnsureImage for the pod starts waiting anew.
func (b *Background) ForgetPod(uid types.UID) {
	b.mu.Lock()
	for w, pl := range b.waiting {
		if w.pod != uid {
			continue
		}
		delete(b.waiting, w)
		if pl.ended {
			continue
		}
		delete(pl.waiters, w)
		if len(pl.waiters) == 0 {
			pl.cancel(errNoWaiter)
			if b.running[pl.key] == pl {
				delete(b.running, pl.key)
			}
		}
	}
	b.mu.Unlock()
	b.puller.ForgetPod(uid)
}

// ImageUser is Puller.ImageUser.
func (b *Background) ImageUser(ctx context.Context, imageRef string) (uid *int64, username string, err error) {
	return b.puller.ImageUser(ctx, imageRef)
}

// Wait makes EnsureImage start no pull any more and blocks until every
// pull's goroutine has returned: promptly once the constructor's context
// has ended, else when the running pulls end (at the deadline at the
// latest).
func (b *Background) Wait() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.wg.Wait()
}

// credentialsID identifies the credentials a pull tries, in order, without
// keeping them: a hash of every field, each length-prefixed; empty for an
// anonymous pull.
func credentialsID(auths []*runtimeapi.AuthConfig) string {
	if len(auths) == 0 {
		return ""
	}
	h := sha256.New()
	for _, a := range auths {
		for _, f := range []string{a.GetUsername(), a.GetPassword(), a.GetAuth(), a.GetServerAddress(), a.GetIdentityToken(), a.GetRegistryToken()} {
			h.Write(binary.AppendUvarint(nil, uint64(len(f))))
			h.Write([]byte(f))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
