package images

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Nothing below asserts on durations: every wait polls with a generous
// timeout, and pulls that must not end before the test says so block on a
// gate rather than on a timer.

// longDeadline is a deadline no test pull reaches.
const longDeadline = time.Hour

type bgHarness struct {
	*harness
	bg     *Background
	cancel context.CancelFunc

	mu   sync.Mutex
	done []types.UID
}

func newBackgroundHarness(t *testing.T, timeout time.Duration, present ...string) *bgHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	h := &bgHarness{harness: newHarness(present...), cancel: cancel}
	h.bg = NewBackground(ctx, h.puller, timeout, func(uid types.UID) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.done = append(h.done, uid)
	})
	t.Cleanup(func() {
		cancel()
		h.bg.Wait()
	})
	return h
}

// ensureFor is EnsureImage for container c of the pod with that UID.
func (h *bgHarness) ensureFor(t *testing.T, uid types.UID, c, image string, policy v1.PullPolicy, secrets ...v1.Secret) (string, error) {
	t.Helper()
	ref := &v1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "app", UID: uid, FieldPath: "spec.containers{" + c + "}"}
	return h.bg.EnsureImage(testContext(t), ref, testPod(uid), image, policy, secrets, &runtimeapi.PodSandboxConfig{})
}

// doneCalls returns the UIDs onDone was called with, sorted.
func (h *bgHarness) doneCalls() []types.UID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(slices.Values(h.done))
}

// counts returns how many pulls run and how many containers wait.
func (h *bgHarness) counts() (running, waiting int) {
	h.bg.mu.Lock()
	defer h.bg.mu.Unlock()
	return len(h.bg.running), len(h.bg.waiting)
}

// stop ends the Background's context and waits for its goroutines, after
// which events and calls are final.
func (h *bgHarness) stop() {
	h.cancel()
	h.bg.Wait()
}

// gate holds every PullImage until release is closed (the pull succeeds)
// or the pull's context ends (it fails with the context's error).
type gate struct {
	release chan struct{}
	started atomic.Int32
	ended   atomic.Int32
	mu      sync.Mutex
	causes  []error // context.Cause of the pulls that ended with their ctx
}

func newGate(f *fakeImageService) *gate {
	g := &gate{release: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onPull = func(ctx context.Context) error {
		g.started.Add(1)
		defer g.ended.Add(1)
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			g.mu.Lock()
			g.causes = append(g.causes, context.Cause(ctx))
			g.mu.Unlock()
			return ctx.Err()
		}
	}
	return g
}

func (g *gate) cancelCauses() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.causes)
}

// eventually polls cond until it holds, failing the test after a timeout
// far beyond what any condition here needs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkPulling(t *testing.T, err error, image string) {
	t.Helper()
	var p *PullingError
	if !errors.As(err, &p) {
		t.Fatalf("error = %v (%T), want *PullingError", err, err)
	}
	if p.Reason() != ReasonPulling || p.Error() != `pulling image "`+image+`"` {
		t.Fatalf("error = %s %q, want Pulling for %q", p.Reason(), p.Error(), image)
	}
	if re, ok := err.(interface{ Reason() string }); !ok || re.Reason() != "Pulling" {
		t.Fatalf("error does not give the Pulling reason as the sync loop reads it")
	}
}

// A pull that never returns holds no caller and ends at the deadline with
// ErrImagePull; the pod's backoff then applies.
func TestBackgroundDeadline(t *testing.T) {
	h := newBackgroundHarness(t, 50*time.Millisecond)
	newGate(h.images) // never released

	_, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")

	eventually(t, "onDone after the deadline", func() bool { return len(h.doneCalls()) == 1 })
	if got := h.doneCalls(); !slices.Equal(got, []types.UID{"uid-1"}) {
		t.Fatalf("onDone calls %v, want [uid-1]", got)
	}
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	e := checkError(t, err, ReasonErrImagePull, "pull did not finish within 50ms: context deadline exceeded")
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("error does not wrap context.DeadlineExceeded")
	}
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "busybox:1"`,
		`Warning Failed Failed to pull image "busybox:1": pull did not finish within 50ms: context deadline exceeded`,
		`Warning Failed Error: ErrImagePull`,
	)

	// The puller's backoff goes on: the next call is answered at once.
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkError(t, err, ReasonImagePullBackOff,
		`Back-off pulling image "busybox:1": ErrImagePull: pull did not finish within 50ms: context deadline exceeded`)
	checkEvents(t, h.events(),
		`Normal BackOff Back-off pulling image "busybox:1"`,
		`Warning Failed Error: ImagePullBackOff`,
	)
	if n := h.pullCount(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
}

// EnsureImage returns while the pull is held; once it succeeds, the next
// call gets the image ref, once, and the one after starts over.
func TestBackgroundSuccess(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	// The gate is still closed when these return: they cannot have
	// waited for the pull.
	for range 3 {
		_, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
		checkPulling(t, err, "busybox:1")
	}
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	if n := g.ended.Load(); n != 0 {
		t.Fatalf("pull ended before its release")
	}
	close(g.release)
	eventually(t, "onDone", func() bool { return len(h.doneCalls()) == 1 })

	ref, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	if err != nil || ref != "sha256:id-of-busybox:1" {
		t.Fatalf("EnsureImage = %q, %v; want the pulled image's ref", ref, err)
	}
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "busybox:1"`,
		`Normal Pulled Successfully pulled image "busybox:1" in 0s (0s including waiting). Image size: 1234 bytes.`,
	)
	if n := h.pullCount(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
	if running, waiting := h.counts(); running != 0 || waiting != 0 {
		t.Errorf("%d pulls running and %d containers waiting after the result was taken, want none", running, waiting)
	}

	// Always pulls on every container start: the next call pulls again.
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")
	eventually(t, "the second pull", func() bool { return h.pullCount() == 2 })
}

// Whatever needs no registry is answered at once, with no pull started.
func TestBackgroundFastPath(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline, "busybox:1")
	g := newGate(h.images)

	ref, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullIfNotPresent)
	if err != nil || ref != "sha256:id-of-busybox:1" {
		t.Fatalf("IfNotPresent, present: %q, %v", ref, err)
	}
	ref, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullNever)
	if err != nil || ref != "sha256:id-of-busybox:1" {
		t.Fatalf("Never, present: %q, %v", ref, err)
	}
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:2", v1.PullNever)
	checkError(t, err, ReasonErrImageNeverPull, `Container image "busybox:2" is not present with pull policy of Never`)
	_, err = h.ensureFor(t, "uid-1", "app", "foo/Bar", v1.PullAlways)
	if e := checkErrorReason(t, err); e != ReasonInvalidImageName {
		t.Fatalf("reason %s, want InvalidImageName", e)
	}
	checkEvents(t, h.events(),
		`Normal Pulled Container image "busybox:1" already present on machine`,
		`Normal Pulled Container image "busybox:1" already present on machine`,
		`Warning ErrImageNeverPull Container image "busybox:2" is not present with pull policy of Never`,
		`Warning Failed Error: ErrImageNeverPull`,
		`Warning InspectFailed Failed to apply default image tag "foo/Bar": couldn't parse image name "foo/Bar": invalid reference format: repository name (foo/Bar) must be lowercase`,
		`Warning Failed Error: InvalidImageName`,
	)
	if running, waiting := h.counts(); running != 0 || waiting != 0 || g.started.Load() != 0 || h.pullCount() != 0 {
		t.Errorf("%d pulls running, %d containers waiting, %d pulls made; want none", running, waiting, g.started.Load())
	}
}

func checkErrorReason(t *testing.T, err error) string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	return e.Reason()
}

// Containers waiting for one image share one pull; onDone is called once
// per pod; each container takes the result.
func TestBackgroundJoin(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	waiters := []struct {
		uid types.UID
		c   string
	}{{"uid-1", "a"}, {"uid-1", "b"}, {"uid-2", "a"}}
	for _, w := range waiters {
		_, err := h.ensureFor(t, w.uid, w.c, "busybox:1", v1.PullIfNotPresent)
		checkPulling(t, err, "busybox:1")
	}
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	close(g.release)
	eventually(t, "onDone for both pods", func() bool { return len(h.doneCalls()) == 2 })
	h.stop()

	if got := h.doneCalls(); !slices.Equal(got, []types.UID{"uid-1", "uid-2"}) {
		t.Errorf("onDone calls %v, want one per pod", got)
	}
	for _, w := range waiters {
		ref, err := h.ensureFor(t, w.uid, w.c, "busybox:1", v1.PullIfNotPresent)
		if err != nil || ref != "sha256:id-of-busybox:1" {
			t.Errorf("%s/%s: EnsureImage = %q, %v", w.uid, w.c, ref, err)
		}
	}
	if n := h.pullCount(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "busybox:1"`,
		`Normal Pulled Successfully pulled image "busybox:1" in 0s (0s including waiting). Image size: 1234 bytes.`,
	)
}

// A failed shared pull reaches every waiter, with one "Failed to pull"
// Event, one "Error: ErrImagePull" per container that takes it, and a
// backoff window for every waiting pod.
func TestBackgroundSharedFailure(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)
	h.images.injectError("PullImage", errors.New("not found"))

	for _, uid := range []types.UID{"uid-1", "uid-2"} {
		_, err := h.ensureFor(t, uid, "app", "busybox:1", v1.PullAlways)
		checkPulling(t, err, "busybox:1")
	}
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	close(g.release)
	eventually(t, "onDone for both pods", func() bool { return len(h.doneCalls()) == 2 })
	for _, uid := range []types.UID{"uid-1", "uid-2"} {
		_, err := h.ensureFor(t, uid, "app", "busybox:1", v1.PullAlways)
		checkError(t, err, ReasonErrImagePull, "not found")
	}
	for _, uid := range []types.UID{"uid-1", "uid-2"} {
		_, err := h.ensureFor(t, uid, "app", "busybox:1", v1.PullAlways)
		checkError(t, err, ReasonImagePullBackOff, `Back-off pulling image "busybox:1": ErrImagePull: not found`)
	}
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "busybox:1"`,
		`Warning Failed Failed to pull image "busybox:1": not found`,
		`Warning Failed Error: ErrImagePull`,
		`Warning Failed Error: ErrImagePull`,
		`Normal BackOff Back-off pulling image "busybox:1"`,
		`Warning Failed Error: ImagePullBackOff`,
		`Normal BackOff Back-off pulling image "busybox:1"`,
		`Warning Failed Error: ImagePullBackOff`,
	)
	if n := h.pullCount(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
}

// Different images pull at the same time.
func TestBackgroundParallel(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	for _, image := range []string{"busybox:1", "alpine:3"} {
		_, err := h.ensureFor(t, "uid-1", image, image, v1.PullAlways)
		checkPulling(t, err, image)
	}
	// Both are inside PullImage at once, neither released.
	eventually(t, "both pulls to start", func() bool { return g.started.Load() == 2 })
	close(g.release)
	eventually(t, "both pulls to end", func() bool { running, _ := h.counts(); return running == 0 })
	for _, image := range []string{"busybox:1", "alpine:3"} {
		ref, err := h.ensureFor(t, "uid-1", image, image, v1.PullAlways)
		if err != nil || ref != "sha256:id-of-"+image {
			t.Errorf("%s: EnsureImage = %q, %v", image, ref, err)
		}
	}
	// onDone is once per pull for the pod.
	if got := h.doneCalls(); !slices.Equal(got, []types.UID{"uid-1", "uid-1"}) {
		t.Errorf("onDone calls %v, want uid-1 twice", got)
	}
}

// Pods pulling with different credentials do not share a pull; pods with
// the same credentials do.
func TestBackgroundKeyIncludesCredentials(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)
	secret := func(user string) v1.Secret {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":pw"))
		return dockerConfigJSONSecret("s", `{"auths":{"registry.example.com":{"auth":"`+auth+`"}}}`)
	}
	const image = "registry.example.com/app:1"
	calls := []struct {
		uid    types.UID
		secret *v1.Secret
	}{
		{"uid-1", ptr(secret("alice"))},
		{"uid-2", ptr(secret("alice"))}, // joins uid-1's
		{"uid-3", ptr(secret("bob"))},   // its own
		{"uid-4", nil},                  // anonymous: its own
	}
	for _, c := range calls {
		var secrets []v1.Secret
		if c.secret != nil {
			secrets = append(secrets, *c.secret)
		}
		_, err := h.ensureFor(t, c.uid, "app", image, v1.PullAlways, secrets...)
		checkPulling(t, err, image)
	}
	eventually(t, "three pulls to start", func() bool { return g.started.Load() == 3 })
	close(g.release)
	eventually(t, "onDone for every pod", func() bool { return len(h.doneCalls()) == 4 })
	var users []string
	for _, p := range h.images.pullCalls() {
		users = append(users, p.auth.GetUsername())
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"", "alice", "bob"}) {
		t.Errorf("pulled as %q, want one pull each as anonymous, alice and bob", users)
	}
}

// ForgetPod of the only waiter cancels the pull: no Failed Event, no
// backoff, no onDone.
func TestBackgroundForgetPodCancels(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	_, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	h.bg.ForgetPod("uid-1")
	eventually(t, "the pull to be cancelled", func() bool { return g.ended.Load() == 1 })
	if causes := g.cancelCauses(); len(causes) != 1 || !errors.Is(causes[0], errNoWaiter) {
		t.Fatalf("pull ended with %v, want cancelled by ForgetPod", causes)
	}
	h.stop()

	checkEvents(t, h.events(), `Normal Pulling Pulling image "busybox:1"`)
	if got := h.doneCalls(); len(got) != 0 {
		t.Errorf("onDone calls %v, want none", got)
	}
	if running, waiting := h.counts(); running != 0 || waiting != 0 {
		t.Errorf("%d pulls running and %d containers waiting, want none", running, waiting)
	}
	n := 0
	h.puller.failures.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d backoff windows opened, want none", n)
	}
}

// ForgetPod of one waiter leaves the pull to the others.
func TestBackgroundForgetPodShared(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	for _, uid := range []types.UID{"uid-1", "uid-2"} {
		_, err := h.ensureFor(t, uid, "app", "busybox:1", v1.PullAlways)
		checkPulling(t, err, "busybox:1")
	}
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	h.bg.ForgetPod("uid-1")
	close(g.release)
	eventually(t, "onDone", func() bool { return len(h.doneCalls()) == 1 })
	h.stop()

	if got := h.doneCalls(); !slices.Equal(got, []types.UID{"uid-2"}) {
		t.Errorf("onDone calls %v, want [uid-2]", got)
	}
	if causes := g.cancelCauses(); len(causes) != 0 {
		t.Errorf("pull cancelled: %v", causes)
	}
	ref, err := h.ensureFor(t, "uid-2", "app", "busybox:1", v1.PullAlways)
	if err != nil || ref != "sha256:id-of-busybox:1" {
		t.Errorf("EnsureImage = %q, %v", ref, err)
	}
}

// ForgetPod drops a pod's backoff windows.
func TestBackgroundForgetPodBackoff(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	h.images.injectError("PullImage", errors.New("not found"))
	_, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")
	eventually(t, "onDone", func() bool { return len(h.doneCalls()) == 1 })
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkError(t, err, ReasonErrImagePull, "not found")

	h.bg.ForgetPod("uid-1")
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")
}

// When the context ends, running pulls are abandoned (no Failed Event, no
// onDone), their goroutines end, and no pull starts any more.
func TestBackgroundStop(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	g := newGate(h.images)

	_, err := h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	checkPulling(t, err, "busybox:1")
	eventually(t, "the pull to start", func() bool { return g.started.Load() == 1 })
	h.stop() // returns only once the pull's goroutine has

	if g.ended.Load() != 1 {
		t.Errorf("pull still in PullImage after Wait")
	}
	checkEvents(t, h.events(), `Normal Pulling Pulling image "busybox:1"`)
	if got := h.doneCalls(); len(got) != 0 {
		t.Errorf("onDone calls %v, want none", got)
	}
	// The waiter gets the abandonment, a plain error.
	_, err = h.ensureFor(t, "uid-1", "app", "busybox:1", v1.PullAlways)
	var e *Error
	if err == nil || errors.As(err, &e) || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want a plain wrapped context.Canceled", err)
	}
	// No pull starts any more.
	_, err = h.ensureFor(t, "uid-2", "app", "busybox:1", v1.PullAlways)
	var p *PullingError
	if err == nil || errors.As(err, &p) || errors.As(err, &e) {
		t.Errorf("error = %v, want a plain error", err)
	}
	if n := g.started.Load(); n != 1 {
		t.Errorf("%d pulls started, want 1", n)
	}
}

func TestBackgroundRejectsNoDeadline(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewBackground with a zero timeout did not panic")
		}
	}()
	NewBackground(context.Background(), NewPuller(newFakeImageService(), nil, nil), 0, nil)
}

// Many callers, images and ForgetPods at once: for the race detector.
func TestBackgroundConcurrent(t *testing.T) {
	h := newBackgroundHarness(t, longDeadline)
	h.recorder.Events = nil // FakeRecorder drops events without a channel
	var wg sync.WaitGroup
	images := []string{"busybox:1", "busybox:2", "alpine:3"}
	for i := range 24 {
		wg.Go(func() {
			uid := types.UID([]string{"uid-1", "uid-2", "uid-3", "uid-4"}[i%4])
			image := images[i%len(images)]
			for range 20 {
				ref, err := h.ensureFor(t, uid, image, image, v1.PullAlways)
				var p *PullingError
				switch {
				case err == nil && ref != "sha256:id-of-"+image:
					t.Errorf("ref %q for %s", ref, image)
				case err != nil && !errors.As(err, &p):
					t.Errorf("unexpected error %v", err)
				}
				if i%7 == 0 {
					h.bg.ForgetPod(uid)
				}
			}
		})
	}
	wg.Wait()
	h.stop()
}
