package podsource

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
)

// uidRecorder is an onChange that remembers every UID it was called with.
type uidRecorder struct {
	mu   sync.Mutex
	uids []types.UID
}

func (r *uidRecorder) onChange(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uids = append(r.uids, uid)
}

func (r *uidRecorder) count(uid types.UID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, u := range r.uids {
		if u == uid {
			n++
		}
	}
	return n
}

func testPod(name string, uid types.UID, node string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid},
		Spec:       v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "app", Image: "localhost/app:test"}}},
	}
}

// startSource runs a Source over client until the test ends and waits for
// its cache. Status-only updates go to status, or to rec when status is nil.
func startSource(ctx context.Context, t *testing.T, client *fake.Clientset, rec, status *uidRecorder) *Source {
	t.Helper()
	s, err := New(client, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if status == nil {
		status = rec
	}
	if err := s.OnChange(rec.onChange, status.onChange); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if !s.WaitForSync(ctx, wait.ForeverTestTimeout) {
		t.Fatal("cache did not sync")
	}
	return s
}

// waitCalls waits until onChange was called at least n times with uid.
func waitCalls(ctx context.Context, t *testing.T, rec *uidRecorder, uid types.UID, n int, why string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return rec.count(uid) >= n, nil
	})
	if err != nil {
		t.Fatalf("onChange(%s) called %d times, want %d %s: %v", uid, rec.count(uid), n, why, err)
	}
}

func TestSourceNotifiesAddUpdateDelete(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	existing := testPod("existing", "uid-existing", "node-1")
	client := fake.NewClientset(existing)
	rec := &uidRecorder{}
	s := startSource(ctx, t, client, rec, nil)
	// Pods already there when the agent starts are added by the first list.
	waitCalls(ctx, t, rec, existing.UID, 1, "for a pod listed at start")

	pods := client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod("web", "uid-web", "node-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitCalls(ctx, t, rec, p.UID, 1, "on add")

	p = p.DeepCopy()
	p.Labels = map[string]string{"version": "2"}
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCalls(ctx, t, rec, p.UID, 2, "on update")

	if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCalls(ctx, t, rec, p.UID, 3, "on delete")
	err = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		_, ok := s.GetPodByUID(p.UID)
		return !ok, nil
	})
	if err != nil {
		t.Errorf("deleted pod still cached: %v", err)
	}
}

// An update of the status alone (the agent's own writes) is told apart
// from one of what the agent acts upon: spec, labels, annotations,
// deletion.
func TestSourceTellsStatusOnlyUpdates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rec, status := &uidRecorder{}, &uidRecorder{}
	startSource(ctx, t, client, rec, status)
	pods := client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod("web", "uid-web", "node-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitCalls(ctx, t, rec, p.UID, 1, "on add")

	for i, change := range []func(*v1.Pod){
		func(p *v1.Pod) { p.Status.Phase = v1.PodRunning },
		func(p *v1.Pod) {
			p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CreateContainerError", Message: "container 1"}}}}
		},
		func(p *v1.Pod) { p.Status.ContainerStatuses[0].State.Waiting.Message = "container 2" },
	} {
		p = p.DeepCopy()
		change(p)
		if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitCalls(ctx, t, status, p.UID, i+1, "on a status update")
	}
	if n := rec.count(p.UID); n != 1 {
		t.Errorf("onChange called %d times after status updates only, want 1 (the add)", n)
	}

	for i, change := range []func(*v1.Pod){
		func(p *v1.Pod) { p.Labels = map[string]string{"version": "2"} },
		func(p *v1.Pod) { p.Annotations = map[string]string{"note": "x"} },
		func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"}}}
		},
	} {
		p = p.DeepCopy()
		change(p)
		if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitCalls(ctx, t, rec, p.UID, i+2, "on an update of what the agent acts upon")
	}
	if n := status.count(p.UID); n != 3 {
		t.Errorf("onStatusChange called %d times, want 3 (the status updates)", n)
	}
}

// A delete the watch missed reaches the handler as a DeletedFinalStateUnknown
// tombstone when the informer relists. The watch is made to miss it: the
// first watch is the test's, the pod is deleted behind its back, then the
// watch ends with 410 Expired, which makes the reflector list again.
func TestSourceNotifiesTombstone(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	p := testPod("web", "uid-web", "node-1")
	client := fake.NewClientset(p)
	firstWatch := watch.NewRaceFreeFake()
	var once sync.Once
	client.PrependWatchReactor("pods", func(clienttesting.Action) (bool, watch.Interface, error) {
		handled := false
		once.Do(func() { handled = true })
		if handled {
			return true, firstWatch, nil
		}
		return false, nil, nil // later watches: the object tracker's
	})
	rec := &uidRecorder{}
	s, err := New(client, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OnChange(rec.onChange, rec.onChange); err != nil {
		t.Fatal(err)
	}
	// A second handler on the same informer shows what the Source's own
	// handler was given, so the test knows it took the tombstone path.
	var (
		mu         sync.Mutex
		tombstones []string
	)
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if ts, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			mu.Lock()
			tombstones = append(tombstones, ts.Key)
			mu.Unlock()
		}
	}}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()
	if !s.WaitForSync(ctx, wait.ForeverTestTimeout) {
		t.Fatal("cache did not sync")
	}
	waitCalls(ctx, t, rec, p.UID, 1, "on add")

	if err := client.Tracker().Delete(v1.SchemeGroupVersion.WithResource("pods"), p.Namespace, p.Name); err != nil {
		t.Fatal(err)
	}
	firstWatch.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
	waitCalls(ctx, t, rec, p.UID, 2, "on a delete found by a relist")

	// The second handler runs on its own goroutine: wait for it too.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(tombstones, []string{"default/web"}), nil
	}); err != nil {
		mu.Lock()
		defer mu.Unlock()
		t.Errorf("tombstones %v, want [default/web]: the delete did not take the tombstone path", tombstones)
	}
}

func TestSourceCache(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	web := testPod("web", "uid-web", "node-1")
	db := testPod("db", "uid-db", "node-1")
	// The fake clientset ignores field selectors, so a pod bound to
	// another node would be cached too; the spec.nodeName selector the
	// Source sets is left to a real API server and not asserted here.
	client := fake.NewClientset(web, db)
	s := startSource(ctx, t, client, &uidRecorder{}, nil)

	for _, tc := range []struct {
		name      string
		uid       types.UID
		namespace string
		podName   string
		want      string // name of the pod found; "" for none
	}{
		{name: "web", uid: "uid-web", namespace: "default", podName: "web", want: "web"},
		{name: "db", uid: "uid-db", namespace: "default", podName: "db", want: "db"},
		{name: "unknown", uid: "uid-other", namespace: "default", podName: "other"},
		{name: "other namespace", uid: "uid-other", namespace: "kube-system", podName: "web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byUID, okUID := s.GetPodByUID(tc.uid)
			byName, okName := s.GetPod(tc.namespace, tc.podName)
			if tc.want == "" {
				if okUID || okName {
					t.Errorf("found %v / %v, want nothing", byUID, byName)
				}
				return
			}
			if !okUID || byUID.Name != tc.want {
				t.Errorf("GetPodByUID(%s) = %v, %v; want %s", tc.uid, byUID, okUID, tc.want)
			}
			if !okName || byName.UID != tc.uid {
				t.Errorf("GetPod(%s, %s) = %v, %v; want UID %s", tc.namespace, tc.podName, byName, okName, tc.uid)
			}
		})
	}

	var names []string
	for _, p := range s.Pods() {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if want := []string{"db", "web"}; !slices.Equal(names, want) {
		t.Errorf("Pods() = %v, want %v", names, want)
	}
}

// A pod deleted and re-created under the same name is a new pod: the UID
// index must answer for the new UID only.
func TestSourceRecreatedPod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	old := testPod("web", "uid-old", "node-1")
	client := fake.NewClientset(old)
	rec := &uidRecorder{}
	s := startSource(ctx, t, client, rec, nil)
	pods := client.CoreV1().Pods("default")
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, testPod("web", "uid-new", "node-1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCalls(ctx, t, rec, "uid-new", 1, "for the new pod")
	waitCalls(ctx, t, rec, "uid-old", 2, "for the old pod's delete")
	if _, ok := s.GetPodByUID("uid-old"); ok {
		t.Error("the old UID still finds a pod")
	}
	if p, ok := s.GetPodByUID("uid-new"); !ok || p.Name != "web" {
		t.Errorf("GetPodByUID(uid-new) = %v, %v", p, ok)
	}
	if p, ok := s.GetPod("default", "web"); !ok || p.UID != "uid-new" {
		t.Errorf("GetPod(default, web) = %v, %v; want uid-new", p, ok)
	}
}
