package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

type harness struct {
	images   *fakeImageService
	recorder *record.FakeRecorder
	clock    *testingclock.FakeClock
	puller   *Puller
	ref      *v1.ObjectReference
}

func newHarness(present ...string) *harness {
	h := &harness{
		images:   newFakeImageService(present...),
		recorder: record.NewFakeRecorder(100),
		clock:    testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		ref:      &v1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "app", UID: "uid-1", FieldPath: "spec.containers{app}"},
	}
	h.puller = NewPuller(h.images, h.recorder, flowcontrol.NewFakeBackOff(InitialBackoff, MaxBackoff, h.clock))
	return h
}

func testPod(uid types.UID) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: uid, Annotations: map[string]string{"a": "b"}}}
}

func (h *harness) ensure(t *testing.T, image string, policy v1.PullPolicy, secrets ...v1.Secret) (string, error) {
	t.Helper()
	ctx := testContext(t)
	return h.puller.EnsureImage(ctx, h.ref, testPod("uid-1"), image, policy, secrets, &runtimeapi.PodSandboxConfig{})
}

// events drains the recorded events.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (h *harness) pullCount() int { return len(h.images.pullCalls()) }

func checkEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// checkError asserts err is an *Error with reason and message.
func checkError(t *testing.T, err error, reason, message string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if e.Reason() != reason || e.Error() != message {
		t.Fatalf("error = %s %q, want %s %q", e.Reason(), e.Error(), reason, message)
	}
	return e
}

func TestEnsureImagePolicies(t *testing.T) {
	tests := []struct {
		name       string
		present    []string
		image      string
		policy     v1.PullPolicy
		wantRef    string
		wantPulls  int
		wantReason string
		wantEvents []string
	}{{
		name:       "Never and absent",
		image:      "busybox:1.36",
		policy:     v1.PullNever,
		wantReason: ReasonErrImageNeverPull,
		wantEvents: []string{
			`Warning ErrImageNeverPull Container image "busybox:1.36" is not present with pull policy of Never`,
			`Warning Failed Error: ErrImageNeverPull`,
		},
	}, {
		name:       "Never and present",
		present:    []string{"busybox:1.36"},
		image:      "busybox:1.36",
		policy:     v1.PullNever,
		wantRef:    "sha256:id-of-busybox:1.36",
		wantEvents: []string{`Normal Pulled Container image "busybox:1.36" already present on machine`},
	}, {
		name:       "IfNotPresent and present",
		present:    []string{"busybox:1.36"},
		image:      "busybox:1.36",
		policy:     v1.PullIfNotPresent,
		wantRef:    "sha256:id-of-busybox:1.36",
		wantEvents: []string{`Normal Pulled Container image "busybox:1.36" already present on machine`},
	}, {
		name:      "IfNotPresent and absent",
		image:     "busybox:1.36",
		policy:    v1.PullIfNotPresent,
		wantRef:   "sha256:id-of-busybox:1.36",
		wantPulls: 1,
		wantEvents: []string{
			`Normal Pulling Pulling image "busybox:1.36"`,
			`Normal Pulled Successfully pulled image "busybox:1.36" in 0s (0s including waiting). Image size: 1234 bytes.`,
		},
	}, {
		name:      "Always pulls although present",
		present:   []string{"busybox:1.36"},
		image:     "busybox:1.36",
		policy:    v1.PullAlways,
		wantRef:   "sha256:id-of-busybox:1.36",
		wantPulls: 1,
		wantEvents: []string{
			`Normal Pulling Pulling image "busybox:1.36"`,
			`Normal Pulled Successfully pulled image "busybox:1.36" in 0s (0s including waiting). Image size: 1234 bytes.`,
		},
	}, {
		name:      "empty policy and no tag means Always, with the tag defaulted",
		present:   []string{"busybox:latest"},
		image:     "busybox",
		wantRef:   "sha256:id-of-busybox:latest",
		wantPulls: 1,
		wantEvents: []string{
			`Normal Pulling Pulling image "busybox"`,
			`Normal Pulled Successfully pulled image "busybox" in 0s (0s including waiting). Image size: 1234 bytes.`,
		},
	}, {
		name:       "empty policy and a tag means IfNotPresent",
		present:    []string{"busybox:1.36"},
		image:      "busybox:1.36",
		wantRef:    "sha256:id-of-busybox:1.36",
		wantEvents: []string{`Normal Pulled Container image "busybox:1.36" already present on machine`},
	}, {
		name:       "invalid name",
		image:      "foo/Bar",
		policy:     v1.PullIfNotPresent,
		wantReason: ReasonInvalidImageName,
		wantEvents: []string{
			`Warning InspectFailed Failed to apply default image tag "foo/Bar": couldn't parse image name "foo/Bar": invalid reference format: repository name (foo/Bar) must be lowercase`,
			`Warning Failed Error: InvalidImageName`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(tt.present...)
			got, err := h.ensure(t, tt.image, tt.policy)
			if tt.wantReason != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason() != tt.wantReason {
					t.Fatalf("error = %v, want reason %s", err, tt.wantReason)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantRef {
				t.Errorf("imageRef = %q, want %q", got, tt.wantRef)
			}
			if n := h.pullCount(); n != tt.wantPulls {
				t.Errorf("%d pulls, want %d", n, tt.wantPulls)
			}
			checkEvents(t, h.events(), tt.wantEvents...)
		})
	}
}

func TestEnsureImageSpec(t *testing.T) {
	h := newHarness()
	if _, err := h.ensure(t, "registry.example.com/app", v1.PullAlways); err != nil {
		t.Fatal(err)
	}
	pulls := h.images.pullCalls()
	if len(pulls) != 1 || pulls[0].image != "registry.example.com/app:latest" || pulls[0].annotations["a"] != "b" || pulls[0].auth != nil {
		t.Errorf("pulls = %+v, want one anonymous pull of registry.example.com/app:latest with the pod's annotations", pulls)
	}
}

func TestEnsureImageBackoff(t *testing.T) {
	h := newHarness()
	const image = "registry.example.com/app:1"

	// A failed pull: ErrImagePull with the runtime's text, a 10s window.
	h.images.injectError("PullImage", errors.New("failed to resolve reference: not found"))
	_, err := h.ensure(t, image, v1.PullIfNotPresent)
	checkError(t, err, ReasonErrImagePull, "failed to resolve reference: not found")
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "registry.example.com/app:1"`,
		`Warning Failed Failed to pull image "registry.example.com/app:1": failed to resolve reference: not found`,
		`Warning Failed Error: ErrImagePull`,
	)

	// Inside the window: ImagePullBackOff with the last error, no pull.
	h.clock.Step(4 * time.Second)
	_, err = h.ensure(t, image, v1.PullIfNotPresent)
	checkError(t, err, ReasonImagePullBackOff,
		`Back-off pulling image "registry.example.com/app:1": ErrImagePull: failed to resolve reference: not found`)
	checkEvents(t, h.events(),
		`Normal BackOff Back-off pulling image "registry.example.com/app:1"`,
		`Warning Failed Error: ImagePullBackOff`,
	)
	if n := h.pullCount(); n != 1 {
		t.Fatalf("%d pulls, want 1", n)
	}

	// Another pod is not held back by this pod's window.
	ctx := testContext(t)
	if _, err := h.puller.EnsureImage(ctx, nil, testPod("uid-2"), image, v1.PullAlways, nil, nil); err != nil {
		t.Fatalf("other pod: %v", err)
	}
	if n := h.pullCount(); n != 2 {
		t.Fatalf("%d pulls, want 2", n)
	}
	h.images.removeImage(image) // absent again for this pod's retries

	// After the window: a real retry, which fails again and doubles it.
	h.clock.Step(7 * time.Second)
	h.images.injectError("PullImage", errors.New("still not found"))
	_, err = h.ensure(t, image, v1.PullIfNotPresent)
	checkError(t, err, ReasonErrImagePull, "still not found")
	// The window has doubled to 20s: still closed after 19s.
	h.clock.Step(19 * time.Second)
	_, err = h.ensure(t, image, v1.PullIfNotPresent)
	checkError(t, err, ReasonImagePullBackOff, `Back-off pulling image "registry.example.com/app:1": ErrImagePull: still not found`)

	// The window passes; the retry succeeds.
	h.clock.Step(2 * time.Second)
	h.events()
	ref, err := h.ensure(t, image, v1.PullIfNotPresent)
	if err != nil || ref != "sha256:id-of-"+image {
		t.Fatalf("EnsureImage = %q, %v", ref, err)
	}
	checkEvents(t, h.events(),
		`Normal Pulling Pulling image "registry.example.com/app:1"`,
		`Normal Pulled Successfully pulled image "registry.example.com/app:1" in 0s (0s including waiting). Image size: 1234 bytes.`,
	)
	if n := h.pullCount(); n != 4 {
		t.Errorf("%d pulls, want 4", n)
	}
}

func TestEnsureImageBackoffForgotten(t *testing.T) {
	h := newHarness()
	h.images.injectError("PullImage", errors.New("boom"))
	if _, err := h.ensure(t, "busybox:1", v1.PullAlways); err == nil {
		t.Fatal("want an error")
	}
	// Long after the window, a success elsewhere garbage-collects it and
	// its message.
	h.clock.Step(2*MaxBackoff + time.Second)
	if _, err := h.ensure(t, "busybox:2", v1.PullAlways); err != nil {
		t.Fatal(err)
	}
	n := 0
	h.puller.failures.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d failure messages kept, want 0", n)
	}
}

func TestEnsureImageAlwaysPullsEveryTime(t *testing.T) {
	h := newHarness()
	for i := 0; i < 3; i++ {
		if _, err := h.ensure(t, "busybox:1.36", v1.PullAlways); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.pullCount(); n != 3 {
		t.Errorf("%d pulls, want 3", n)
	}
}

func TestEnsureImageRuntimeErrorReasons(t *testing.T) {
	tests := []struct {
		err             error
		reason, message string
	}{{
		err:     fmt.Errorf("%w: dial tcp: connection refused", crierrors.ErrRegistryUnavailable),
		reason:  ReasonRegistryUnavailable,
		message: "image pull failed for busybox:1 because the registry is unavailable: dial tcp: connection refused",
	}, {
		err:     fmt.Errorf("%w: no valid signature", crierrors.ErrSignatureValidationFailed),
		reason:  ReasonSignatureValidationFailed,
		message: "image pull failed for busybox:1 because the signature validation failed: no valid signature",
	}, {
		err:     errors.New("rpc error: code = NotFound desc = 100% missing"),
		reason:  ReasonErrImagePull,
		message: "rpc error: code = NotFound desc = 100% missing",
	}}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			h := newHarness()
			h.images.injectError("PullImage", tt.err)
			_, err := h.ensure(t, "busybox:1", v1.PullAlways)
			checkError(t, err, tt.reason, tt.message)
			if !errors.Is(err, tt.err) {
				t.Errorf("error does not wrap the runtime's")
			}
			events := h.events()
			if want := "Warning Failed Error: " + tt.reason; events[len(events)-1] != want {
				t.Errorf("last event %q, want %q", events[len(events)-1], want)
			}
			h.clock.Step(time.Second)
			_, err = h.ensure(t, "busybox:1", v1.PullAlways)
			checkError(t, err, ReasonImagePullBackOff, `Back-off pulling image "busybox:1": `+tt.reason+": "+tt.message)
		})
	}
}

func TestEnsureImageInspectError(t *testing.T) {
	h := newHarness()
	h.images.injectError("ImageStatus", errors.New("runtime down"))
	_, err := h.ensure(t, "busybox:1", v1.PullIfNotPresent)
	checkError(t, err, ReasonImageInspectError, `Failed to inspect image "busybox:1": runtime down`)
	checkEvents(t, h.events(),
		`Warning InspectFailed Failed to inspect image "busybox:1": runtime down`,
		`Warning Failed Error: ImageInspectError`,
	)
}

func TestEnsureImagePullSecrets(t *testing.T) {
	auth := func(user string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":pw")) }
	secrets := []v1.Secret{
		dockerConfigJSONSecret("team", `{"auths":{"registry.example.com/team":{"auth":"`+auth("team")+`"}}}`),
		dockercfgSecret("host", `{"https://registry.example.com":{"username":"host","password":"pw"}}`),
	}
	tests := []struct {
		name      string
		image     string
		pullErrs  []error
		wantUsers []string // "" is anonymous
		wantErr   string
	}{
		{name: "most specific first", image: "registry.example.com/team/app:1", wantUsers: []string{"team"}},
		{name: "next credential after a failure", image: "registry.example.com/team/app:1",
			pullErrs: []error{errors.New("unauthorized")}, wantUsers: []string{"team", "host"}},
		{name: "all fail, no anonymous attempt", image: "registry.example.com/team/app:1",
			pullErrs: []error{errors.New("unauthorized"), errors.New("denied")}, wantUsers: []string{"team", "host"},
			wantErr: "[unauthorized, denied]"},
		{name: "no match is anonymous", image: "other.example.com/app:1", wantUsers: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			for _, e := range tt.pullErrs {
				h.images.injectError("PullImage", e)
			}
			_, err := h.ensure(t, tt.image, v1.PullAlways, secrets...)
			if tt.wantErr != "" {
				checkError(t, err, ReasonErrImagePull, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			var users []string
			for _, p := range h.images.pullCalls() {
				users = append(users, p.auth.GetUsername())
				if p.auth != nil && p.auth.GetPassword() != "pw" {
					t.Errorf("password %q, want pw", p.auth.GetPassword())
				}
			}
			if !slices.Equal(users, tt.wantUsers) {
				t.Errorf("pulled as %q, want %q", users, tt.wantUsers)
			}
		})
	}
}

func TestEnsureImageBadSecret(t *testing.T) {
	h := newHarness()
	_, err := h.ensure(t, "busybox:1", v1.PullAlways, dockerConfigJSONSecret("broken", `{"auths":`))
	var e *Error
	if !errors.As(err, &e) || e.Reason() != ReasonErrImagePull {
		t.Fatalf("error = %v, want ErrImagePull", err)
	}
	if n := h.pullCount(); n != 0 {
		t.Errorf("%d pulls, want 0", n)
	}
	// A present image with IfNotPresent never reads the secrets.
	h.images.setImage("busybox:1", h.images.makeImage("busybox:1"))
	if _, err := h.ensure(t, "busybox:1", v1.PullIfNotPresent, dockerConfigJSONSecret("broken", `{"auths":`)); err != nil {
		t.Errorf("IfNotPresent with the image present: %v", err)
	}
}

func TestEnsureImageCancelled(t *testing.T) {
	h := newHarness()
	ctx, cancel := context.WithCancel(testContext(t))
	h.images.onPull = func(context.Context) error {
		cancel()
		return context.Canceled
	}
	_, err := h.puller.EnsureImage(ctx, h.ref, testPod("uid-1"), "busybox:1", v1.PullAlways, nil, nil)
	var e *Error
	if err == nil || errors.As(err, &e) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want a plain wrapped context.Canceled", err)
	}
	checkEvents(t, h.events(), `Normal Pulling Pulling image "busybox:1"`)

	// No backoff was opened: the next call pulls.
	h.images.onPull = nil
	if _, err := h.ensure(t, "busybox:1", v1.PullAlways); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureImageNilRef(t *testing.T) {
	h := newHarness()
	h.ref = nil
	if _, err := h.ensure(t, "busybox:1", v1.PullNever); err == nil {
		t.Fatal("want an error")
	}
	checkEvents(t, h.events())
}

func TestEnsureImageConcurrent(t *testing.T) {
	h := newHarness()
	ctx := testContext(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			pod := testPod(types.UID(fmt.Sprint("uid-", i%4)))
			if _, err := h.puller.EnsureImage(ctx, h.ref, pod, "busybox:1", v1.PullAlways, nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := h.pullCount(); n != 16 {
		t.Errorf("%d pulls, want 16 (pulls are not deduplicated)", n)
	}
}

func TestImageUser(t *testing.T) {
	tests := []struct {
		name     string
		image    *runtimeapi.Image
		wantUID  *int64
		wantUser string
	}{
		{name: "uid", image: &runtimeapi.Image{Id: "x", Uid: &runtimeapi.Int64Value{Value: 1000}, Username: "ignored"}, wantUID: ptr(int64(1000))},
		{name: "username", image: &runtimeapi.Image{Id: "x", Username: "nobody"}, wantUser: "nobody"},
		{name: "neither is root", image: &runtimeapi.Image{Id: "x"}, wantUID: ptr(int64(0))},
		{name: "absent is root", wantUID: ptr(int64(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			if tt.image != nil {
				h.images.setImage("sha256:x", tt.image)
			}
			uid, user, err := h.puller.ImageUser(testContext(t), "sha256:x")
			if err != nil {
				t.Fatal(err)
			}
			if (uid == nil) != (tt.wantUID == nil) || uid != nil && *uid != *tt.wantUID || user != tt.wantUser {
				t.Errorf("ImageUser = %v, %q; want %v, %q", deref(uid), user, deref(tt.wantUID), tt.wantUser)
			}
		})
	}

	h := newHarness()
	h.images.injectError("ImageStatus", errors.New("down"))
	if _, _, err := h.puller.ImageUser(testContext(t), "sha256:x"); err == nil {
		t.Error("want an error when the runtime fails")
	}
}

// testContext logs through t at the package's verbosity.
func testContext(t *testing.T) context.Context {
	_, ctx := ktesting.NewTestContext(t)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
