package status

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fieldpkg "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// managerNode is the node the managers under test report for.
var managerNode = NodeInfo{HostIPs: []string{"192.0.2.10"}, RuntimeName: "containerd"}

// newTestManager returns a Manager whose API server and cache both hold
// pod, and whose clock stands still at T0 so that equal states compute
// equal statuses.
func newTestManager(t *testing.T, pod *v1.Pod) (*Manager, *fake.Clientset, *podstatetest.PodCache) {
	t.Helper()
	client := fake.NewClientset(pod.DeepCopy())
	cache := podstatetest.NewPodCache()
	cache.Set(pod.DeepCopy())
	m := NewManager(client, cache, &eventLog{}, managerNode, clocktesting.NewFakeClock(podstatetest.T0))
	t.Cleanup(m.queue.ShutDown)
	return m, client, cache
}

// event is one Event a Recorder was asked for.
type event struct {
	object            runtime.Object
	eventtype, reason string
	message           string
}

// eventLog is a Recorder that keeps the Events.
type eventLog struct {
	mu     sync.Mutex
	events []event
}

func (l *eventLog) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event{object: object, eventtype: eventtype, reason: reason, message: fmt.Sprintf(messageFmt, args...)})
}

// recorded returns the Events m emitted.
func recorded(m *Manager) []event {
	l := m.recorder.(*eventLog)
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// stateWithIP is the pod running its one container in a ready sandbox of
// that address; states differing only in the address give statuses that
// are easy to tell apart.
func stateWithIP(ip string) *podstate.PodState {
	sb := podstatetest.ReadySandbox("sb1", 0)
	sb.IPs = []string{ip}
	return podstatetest.State([]podstate.Sandbox{sb},
		podstatetest.Ctr("c1", "sb1", podstatetest.Regular, "app", podstatetest.Running, 0, 0))
}

// statusPatches returns the patches of pods/status the client received.
func statusPatches(client *fake.Clientset) []clienttesting.PatchAction {
	var out []clienttesting.PatchAction
	for _, a := range client.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok && a.GetSubresource() == "status" {
			out = append(out, p)
		}
	}
	return out
}

// decodePatch reads a patch's JSON into maps, to look at what it carries
// rather than at its byte layout.
func decodePatch(t *testing.T, p clienttesting.PatchAction) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.GetPatch(), &m); err != nil {
		t.Fatalf("patch %s is not JSON: %v", p.GetPatch(), err)
	}
	return m
}

// apiPod returns the pod as the fake API server holds it.
func apiPod(ctx context.Context, t *testing.T, client *fake.Clientset, p *v1.Pod) *v1.Pod {
	t.Helper()
	got, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	return got
}

// runManager runs m until the test ends, and waits for it to return then.
func runManager(ctx context.Context, t *testing.T, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(ctx, 2); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait.ForeverTestTimeout):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// poll waits until cond holds, failing the test with what after the
// timeout.
func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// hasPending reports whether m still holds a status to send for the pod.
func hasPending(m *Manager, uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.desired[uid]
	return ok
}

func TestManagerCoalescesUpdates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, _ := newTestManager(t, pod)
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		m.SetPodStatus(pod, stateWithIP(ip), nil)
	}
	if n := m.queue.Len(); n != 1 {
		t.Errorf("queue holds %d entries for one pod, want 1", n)
	}
	stop := runManager(ctx, t, m)
	poll(ctx, t, "no status patch", func() bool { return len(statusPatches(client)) > 0 })
	// Only one update was queued: once the sender is stopped no second
	// patch can be in flight.
	stop()
	patches := statusPatches(client)
	if len(patches) != 1 {
		t.Fatalf("%d status patches, want 1", len(patches))
	}
	status, _ := decodePatch(t, patches[0])["status"].(map[string]any)
	if got := status["podIP"]; got != "10.0.0.3" {
		t.Errorf("patched podIP %v, want the newest, 10.0.0.3", got)
	}
	got := apiPod(ctx, t, client, pod)
	if got.Status.PodIP != "10.0.0.3" || got.Status.Phase != v1.PodRunning {
		t.Errorf("API holds podIP %q phase %q, want 10.0.0.3 Running", got.Status.PodIP, got.Status.Phase)
	}
}

func TestManagerPatchShape(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, cache := newTestManager(t, pod)
	// The cache already holds the status of 10.0.0.1; only the address
	// changes.
	cached := pod.DeepCopy()
	cached.Status = Compute(pod, stateWithIP("10.0.0.1"), nil, managerNode, podstatetest.T0)
	cache.Set(cached)
	m.SetPodStatus(cached, stateWithIP("10.0.0.2"), nil)
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	patches := statusPatches(client)
	if len(patches) != 1 {
		t.Fatalf("%d status patches, want 1", len(patches))
	}
	p := patches[0]
	if p.GetPatchType() != types.StrategicMergePatchType {
		t.Errorf("patch type %s, want %s", p.GetPatchType(), types.StrategicMergePatchType)
	}
	if p.GetNamespace() != pod.Namespace || p.GetName() != pod.Name || p.GetResource().Resource != "pods" {
		t.Errorf("patched %s %s/%s, want pods %s/%s", p.GetResource().Resource, p.GetNamespace(), p.GetName(), pod.Namespace, pod.Name)
	}
	body := decodePatch(t, p)
	// The UID is the precondition: the API server refuses the patch when a
	// pod of the same name but another UID replaced this one.
	meta, _ := body["metadata"].(map[string]any)
	if len(meta) != 1 || meta["uid"] != string(pod.UID) {
		t.Errorf("patch metadata %v, want exactly uid %s", meta, pod.UID)
	}
	status, _ := body["status"].(map[string]any)
	if status["podIP"] != "10.0.0.2" {
		t.Errorf("patch status.podIP %v, want 10.0.0.2", status["podIP"])
	}
	// A two-way patch from the cached status carries the change only.
	for _, unchanged := range []string{"phase", "startTime", "qosClass", "containerStatuses", "hostIP"} {
		if _, ok := status[unchanged]; ok {
			t.Errorf("patch carries unchanged status.%s: %s", unchanged, p.GetPatch())
		}
	}
}

func TestManagerSendsOnlyChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		// cache returns what the cache holds for the pod whose status is
		// set; nil when the pod is gone from it.
		cache func(pod *v1.Pod, st *podstate.PodState) *v1.Pod
	}{
		{
			name: "status equal to the cached pod's",
			cache: func(pod *v1.Pod, st *podstate.PodState) *v1.Pod {
				p := pod.DeepCopy()
				p.Status = Compute(pod, st, nil, managerNode, podstatetest.T0)
				return p
			},
		},
		{
			name:  "pod gone from the cache",
			cache: func(*v1.Pod, *podstate.PodState) *v1.Pod { return nil },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := podstatetest.Pod()
			m, client, cache := newTestManager(t, pod)
			st := stateWithIP("10.0.0.1")
			cached := tc.cache(pod, st)
			if cached == nil {
				cache.Remove(pod.UID)
				cached = pod
			} else {
				cache.Set(cached)
			}
			client.ClearActions()
			m.SetPodStatus(cached, st, nil)
			if err := m.send(ctx, pod.UID); err != nil {
				t.Fatal(err)
			}
			if a := client.Actions(); len(a) != 0 {
				t.Errorf("API calls %v, want none", a)
			}
		})
	}
}

func TestManagerForgetsPodOnNotFoundOrConflict(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"pod deleted", apierrors.NewNotFound(gr, "app")},
		{"pod replaced: UID precondition failed", apierrors.NewConflict(gr, "app", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := podstatetest.Pod()
			m, client, _ := newTestManager(t, pod)
			client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			m.SetPodStatus(pod, stateWithIP("10.0.0.1"), nil)
			// nil tells Run the status is done with: it is not retried.
			if err := m.send(ctx, pod.UID); err != nil {
				t.Fatalf("send = %v, want nil", err)
			}
			if hasPending(m, pod.UID) {
				t.Error("pending status kept after the pod is gone")
			}
			if err := m.send(ctx, pod.UID); err != nil {
				t.Fatal(err)
			}
			if n := len(statusPatches(client)); n != 1 {
				t.Errorf("%d status patches, want 1", n)
			}
		})
	}
}

func TestManagerRetriesUntilItLands(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, _ := newTestManager(t, pod)
	var failures atomic.Int32
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures.Add(1) <= 2 {
			return true, nil, apierrors.NewInternalError(context.DeadlineExceeded)
		}
		return false, nil, nil // on to the object tracker
	})
	m.SetPodStatus(pod, stateWithIP("10.0.0.1"), nil)
	runManager(ctx, t, m)
	poll(ctx, t, "status never landed", func() bool {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.PodIP == "10.0.0.1"
	})
	if n := len(statusPatches(client)); n != 3 {
		t.Errorf("%d status patches, want 3 (two failures, then success)", n)
	}
	poll(ctx, t, "backoff not reset after success", func() bool { return m.queue.NumRequeues(pod.UID) == 0 })
}

// A newer status set while the sender backs off is the one that lands: the
// last status is never lost.
func TestManagerRetrySendsNewestStatus(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, _ := newTestManager(t, pod)
	var failures atomic.Int32
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures.Add(1) <= 1 {
			return true, nil, apierrors.NewServiceUnavailable("etcd leader election")
		}
		return false, nil, nil
	})
	m.SetPodStatus(pod, stateWithIP("10.0.0.1"), nil)
	runManager(ctx, t, m)
	poll(ctx, t, "no first attempt", func() bool { return failures.Load() >= 1 })
	m.SetPodStatus(pod, stateWithIP("10.0.0.2"), nil)
	poll(ctx, t, "newest status never landed", func() bool {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.PodIP == "10.0.0.2"
	})
}

func TestManagerDeletePod(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	failWith := func(verb string, err error) func(*fake.Clientset) {
		return func(c *fake.Clientset) {
			c.PrependReactor(verb, "pods", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err })
		}
	}
	for _, tc := range []struct {
		name       string
		setStatus  bool
		react      func(*fake.Clientset)
		wantErr    bool
		wantVerbs  []string
		wantGone   bool
		wantStatus string // podIP the API ends with; "" to skip
	}{
		{name: "final status, then delete", setStatus: true, wantVerbs: []string{"patch", "delete"}, wantGone: true},
		{name: "no pending status: delete only", wantVerbs: []string{"delete"}, wantGone: true},
		{name: "already deleted", setStatus: true, react: failWith("delete", apierrors.NewNotFound(gr, "app")), wantVerbs: []string{"patch", "delete"}, wantStatus: "10.0.0.9"},
		{name: "replaced by a pod of the same name", setStatus: true, react: failWith("delete", apierrors.NewConflict(gr, "app", nil)), wantVerbs: []string{"patch", "delete"}, wantStatus: "10.0.0.9"},
		{name: "delete fails", setStatus: true, react: failWith("delete", apierrors.NewInternalError(context.DeadlineExceeded)), wantErr: true, wantVerbs: []string{"patch", "delete"}},
		{name: "final status fails: no delete", setStatus: true, react: failWith("patch", apierrors.NewInternalError(context.DeadlineExceeded)), wantErr: true, wantVerbs: []string{"patch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := podstatetest.Pod()
			m, client, _ := newTestManager(t, pod)
			if tc.react != nil {
				tc.react(client)
			}
			if tc.setStatus {
				m.SetPodStatus(pod, stateWithIP("10.0.0.9"), nil)
			}
			client.ClearActions()
			err := m.DeletePod(ctx, pod)
			if (err != nil) != tc.wantErr {
				t.Fatalf("DeletePod = %v, want error %v", err, tc.wantErr)
			}
			var verbs []string
			for _, a := range client.Actions() {
				verbs = append(verbs, a.GetVerb())
				if d, ok := a.(clienttesting.DeleteAction); ok {
					opts := d.GetDeleteOptions()
					if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 {
						t.Errorf("delete grace period %v, want 0", opts.GracePeriodSeconds)
					}
					if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != pod.UID {
						t.Errorf("delete preconditions %+v, want UID %s", opts.Preconditions, pod.UID)
					}
				}
			}
			if !slices.Equal(verbs, tc.wantVerbs) {
				t.Errorf("API calls %v, want %v", verbs, tc.wantVerbs)
			}
			_, getErr := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if tc.wantGone && !apierrors.IsNotFound(getErr) {
				t.Errorf("pod still in the API (get: %v)", getErr)
			}
			if tc.wantStatus != "" {
				if got := apiPod(ctx, t, client, pod).Status.PodIP; got != tc.wantStatus {
					t.Errorf("final status podIP %q, want %q", got, tc.wantStatus)
				}
			}
		})
	}
}

func TestManagerForgetPod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, _ := newTestManager(t, pod)
	m.SetPodStatus(pod, stateWithIP("10.0.0.1"), nil)
	m.ForgetPod(pod.UID)
	client.ClearActions()
	// The pod is still queued; its turn must find nothing to send.
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if a := client.Actions(); len(a) != 0 {
		t.Errorf("API calls %v after ForgetPod, want none", a)
	}
}

// invalid is the API server's refusal of a pod status, for field.
func invalid(pod *v1.Pod, field *fieldpkg.Path) error {
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod.Name, fieldpkg.ErrorList{
		fieldpkg.Forbidden(field, "may not be transitioned to non-terminated state"),
	})
}

// refuse makes the fake API server refuse, as invalid with err, the status
// patches that contain substr.
func refuse(client *fake.Clientset, substr string, err error) {
	client.PrependReactor("patch", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if p, ok := a.(clienttesting.PatchAction); ok && strings.Contains(string(p.GetPatch()), substr) {
			return true, nil, err
		}
		return false, nil, nil
	})
}

// stateWithDebugger is stateWithIP with ephemeral container "debug"
// running too.
func stateWithDebugger(ip string) *podstate.PodState {
	s := stateWithIP(ip)
	s.Containers = append(s.Containers, podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Running, 0, 0))
	s.Sort()
	return s
}

func TestManagerInvalidPatch(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod(podstatetest.WithEphemeral("app", "debug"))
	m, client, _ := newTestManager(t, pod)
	ephField := fieldpkg.NewPath("status", "ephemeralContainerStatuses").Index(0).Child("state")
	refuse(client, `"ephemeralContainerStatuses"`, invalid(pod, ephField))
	m.SetPodStatus(pod, stateWithDebugger("10.0.0.1"), nil)
	runManager(ctx, t, m)

	poll(ctx, t, "the rest of the status never landed", func() bool {
		return apiPod(ctx, t, client, pod).Status.PodIP == "10.0.0.1"
	})
	poll(ctx, t, "pending status kept", func() bool { return !hasPending(m, pod.UID) })
	got := apiPod(ctx, t, client, pod)
	if got.Status.Phase != v1.PodRunning || len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("API holds phase %s containers %+v, want Running with app running", got.Status.Phase, got.Status.ContainerStatuses)
	}
	if len(got.Status.EphemeralContainerStatuses) != 0 {
		t.Errorf("API holds ephemeral statuses %+v, want them as they were (none)", got.Status.EphemeralContainerStatuses)
	}
	patches := statusPatches(client)
	if len(patches) != 2 {
		t.Fatalf("%d status patches, want 2: the refused one, then the rest", len(patches))
	}
	if strings.Contains(string(patches[1].GetPatch()), "ephemeralContainerStatuses") {
		t.Errorf("second patch carries the refused ephemeral statuses again: %s", patches[1].GetPatch())
	}
	events := recorded(m)
	if len(events) != 1 {
		t.Fatalf("%d Events, want 1: %+v", len(events), events)
	}
	e := events[0]
	if e.eventtype != v1.EventTypeWarning || e.reason != "FailedStatusUpdate" || e.object.(*v1.Pod).UID != pod.UID ||
		!strings.Contains(e.message, `Pod "app" is invalid: status.ephemeralContainerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state`) {
		t.Errorf("Event %+v, want a Warning FailedStatusUpdate on the pod with the server's message", e)
	}
	if n := m.queue.NumRequeues(pod.UID); n != 0 {
		t.Errorf("%d requeues, want none: a refused status is not retried as it is", n)
	}

	// The same status again (the next sync): refused again, not told again.
	m.SetPodStatus(pod, stateWithDebugger("10.0.0.1"), nil)
	poll(ctx, t, "second status not handled", func() bool { return !hasPending(m, pod.UID) && len(statusPatches(client)) >= 3 })
	if n := len(recorded(m)); n != 1 {
		t.Errorf("%d Events after the same refusal again, want still 1", n)
	}
}

// A refusal that names a regular container's status: that container is
// left as the API holds it, the rest lands.
func TestManagerInvalidPatchNamesAContainer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod()
	m, client, cache := newTestManager(t, pod)
	// The cache (and API) hold app waiting, from an earlier status.
	cached := pod.DeepCopy()
	cached.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", Image: "localhost/distroless-app:test",
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	cache.Set(cached)
	if _, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cached, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	refuse(client, `"containerStatuses"`, invalid(pod, fieldpkg.NewPath("status", "containerStatuses").Index(0).Child("state")))
	m.SetPodStatus(cached, stateWithIP("10.0.0.1"), nil)
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatalf("send = %v, want nil", err)
	}
	got := apiPod(ctx, t, client, pod)
	if got.Status.PodIP != "10.0.0.1" {
		t.Errorf("API holds podIP %q, want 10.0.0.1", got.Status.PodIP)
	}
	if cs := got.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Waiting == nil {
		t.Errorf("API holds container statuses %+v, want app waiting as it was", cs)
	}
	if n := len(statusPatches(client)); n != 2 {
		t.Errorf("%d status patches, want 2", n)
	}
	if n := len(recorded(m)); n != 1 {
		t.Errorf("%d Events, want 1", n)
	}
}

// A status refused whole, even without its container statuses, is
// dropped: no endless retry, one Event; a later status starts over.
func TestManagerInvalidPatchRefusedTwice(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod(podstatetest.WithEphemeral("app", "debug"))
	m, client, _ := newTestManager(t, pod)
	refuse(client, `"status"`, invalid(pod, fieldpkg.NewPath("status", "conditions").Index(0)))
	m.SetPodStatus(pod, stateWithDebugger("10.0.0.1"), nil)
	runManager(ctx, t, m)
	poll(ctx, t, "pending status kept", func() bool { return !hasPending(m, pod.UID) })
	// Give an endless retry the time to show.
	time.Sleep(500 * time.Millisecond)
	if n := len(statusPatches(client)); n != 2 {
		t.Errorf("%d status patches, want 2: the refused one, then without the ephemeral statuses", n)
	}
	if n := m.queue.NumRequeues(pod.UID); n != 0 {
		t.Errorf("%d requeues, want none", n)
	}
	if n := len(recorded(m)); n != 1 {
		t.Errorf("%d Events, want 1", n)
	}
	m.SetPodStatus(pod, stateWithDebugger("10.0.0.2"), nil)
	poll(ctx, t, "a later status is not sent", func() bool { return len(statusPatches(client)) >= 4 })
}

// The cache may hold a newer status than the pod SetPodStatus was given:
// the patch does not go backwards from it either.
func TestManagerNeverSendsBackwards(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := podstatetest.Pod(podstatetest.WithEphemeral("app", "debug"))
	m, client, cache := newTestManager(t, pod)
	cached := pod.DeepCopy()
	done := &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", ContainerID: "containerd://e1"}
	cached.Status.EphemeralContainerStatuses = []v1.ContainerStatus{{Name: "debug", ContainerID: "containerd://e1", State: v1.ContainerState{Terminated: done}}}
	cache.Set(cached)
	// pod, without that status, and a runtime that shows debug running.
	m.SetPodStatus(pod, stateWithDebugger("10.0.0.1"), nil)
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	patches := statusPatches(client)
	if len(patches) != 1 {
		t.Fatalf("%d status patches, want 1", len(patches))
	}
	if p := string(patches[0].GetPatch()); strings.Contains(p, "ephemeralContainerStatuses") {
		t.Errorf("patch %s moves the terminated ephemeral container back", p)
	}
}

// TestManagerKeepsOtherWritersConditions is the regression test of a stale
// status clobbering other writers: the status is computed from the pod
// read at the start of a sync, then another writer changes the pod's
// status through the API (the cache sees it) before the patch is sent. The
// patch must leave what that writer set as it is.
func TestManagerKeepsOtherWritersConditions(t *testing.T) {
	const gate = v1.PodConditionType("example.com/load-balancer")
	later := metav1.NewTime(podstatetest.T0.Add(time.Minute))
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		// other is what the other writer does to the API's status after
		// the agent computed its own.
		other func(*v1.PodStatus)
		check func(t *testing.T, got *v1.PodStatus)
	}{
		{
			name: "DisruptionTarget added",
			pod:  podstatetest.Pod(),
			other: func(s *v1.PodStatus) {
				s.Conditions = append(s.Conditions, v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue,
					Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: later})
			},
			check: func(t *testing.T, got *v1.PodStatus) {
				c := findPodCondition(got.Conditions, v1.DisruptionTarget)
				if c == nil || c.Status != v1.ConditionTrue || c.Reason != "EvictionByEvictionAPI" {
					t.Errorf("DisruptionTarget %+v after the patch, want the other writer's", c)
				}
			},
		},
		{
			name: "readiness gate set True",
			pod: podstatetest.Pod(func(p *v1.Pod) {
				p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: gate}}
			}),
			other: func(s *v1.PodStatus) {
				s.Conditions = append(s.Conditions, v1.PodCondition{Type: gate, Status: v1.ConditionTrue, LastTransitionTime: later})
			},
			check: func(t *testing.T, got *v1.PodStatus) {
				if c := findPodCondition(got.Conditions, gate); c == nil || c.Status != v1.ConditionTrue {
					t.Errorf("gate condition %+v after the patch, want True", c)
				}
				// Ready follows the gate the patch carries, not the one the
				// status was computed from.
				if c := findPodCondition(got.Conditions, v1.PodReady); c == nil || c.Status != v1.ConditionTrue {
					t.Errorf("Ready %+v after the patch, want True now that the gate is", c)
				}
			},
		},
		{
			name: "other writer's condition removed",
			pod: podstatetest.Pod(func(p *v1.Pod) {
				p.Status.Conditions = []v1.PodCondition{{Type: "example.com/custom", Status: v1.ConditionTrue}}
			}),
			other: func(s *v1.PodStatus) { s.Conditions = nil },
			check: func(t *testing.T, got *v1.PodStatus) {
				if c := findPodCondition(got.Conditions, "example.com/custom"); c != nil {
					t.Errorf("removed condition %+v brought back by the patch", c)
				}
			},
		},
		{
			name:  "nominated node set",
			pod:   podstatetest.Pod(),
			other: func(s *v1.PodStatus) { s.NominatedNodeName = "node-2" },
			check: func(t *testing.T, got *v1.PodStatus) {
				if got.NominatedNodeName != "node-2" {
					t.Errorf("nominatedNodeName %q after the patch, want node-2", got.NominatedNodeName)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			m, client, cache := newTestManager(t, tc.pod)
			// Computed from the pod as the sync read it.
			m.SetPodStatus(tc.pod, stateWithIP("10.0.0.1"), nil)
			// Meanwhile another writer changes the status; the cache sees it.
			newer := apiPod(ctx, t, client, tc.pod)
			tc.other(&newer.Status)
			newer, err := client.CoreV1().Pods(newer.Namespace).UpdateStatus(ctx, newer, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cache.Set(newer.DeepCopy())
			if err := m.send(ctx, tc.pod.UID); err != nil {
				t.Fatal(err)
			}
			if len(statusPatches(client)) != 1 {
				t.Fatalf("%d status patches, want 1", len(statusPatches(client)))
			}
			got := apiPod(ctx, t, client, tc.pod)
			// What the agent owns landed.
			if got.Status.PodIP != "10.0.0.1" || got.Status.Phase != v1.PodRunning || findPodCondition(got.Status.Conditions, v1.ContainersReady) == nil {
				t.Errorf("API holds podIP %q phase %q conditions %v, want the agent's status", got.Status.PodIP, got.Status.Phase, got.Status.Conditions)
			}
			tc.check(t, &got.Status)
		})
	}
}
