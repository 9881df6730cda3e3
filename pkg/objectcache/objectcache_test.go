package objectcache

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

// watches counts the watches the fake API server opened and those still
// open, by resource and field selector. The fake's tracker ignores field
// selectors: the watches it serves are filtered here, as the API server
// does.
type watches struct {
	mu     sync.Mutex
	opened map[string]int
	open   map[string]int
}

func (w *watches) key(resource, selector string) string { return resource + " " + selector }

func (w *watches) counts(resource, selector string) (opened, open int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := w.key(resource, selector)
	return w.opened[k], w.open[k]
}

func (w *watches) openTotal() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.open {
		n += c
	}
	return n
}

// trackedWatch calls onStop on its first Stop.
type trackedWatch struct {
	watch.Interface
	once   sync.Once
	onStop func()
}

func (t *trackedWatch) Stop() {
	t.once.Do(t.onStop)
	t.Interface.Stop()
}

// newClient returns a fake clientset holding objs whose watches w counts.
func newClient(t *testing.T, objs ...runtime.Object) (*fake.Clientset, *watches) {
	t.Helper()
	client := fake.NewClientset(objs...)
	w := &watches{opened: map[string]int{}, open: map[string]int{}}
	client.PrependWatchReactor("*", func(action clienttesting.Action) (bool, watch.Interface, error) {
		wa := action.(clienttesting.WatchActionImpl)
		sel, err := fields.ParseSelector(wa.ListOptions.FieldSelector)
		if err != nil {
			return true, nil, err
		}
		src, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace(), wa.ListOptions)
		if err != nil {
			return true, nil, err
		}
		filtered := watch.Filter(src, func(e watch.Event) (watch.Event, bool) {
			m, err := meta.Accessor(e.Object)
			if err != nil {
				return e, true
			}
			return e, sel.Matches(fields.Set{"metadata.name": m.GetName()})
		})
		k := w.key(action.GetResource().Resource, wa.ListOptions.FieldSelector)
		w.mu.Lock()
		w.opened[k]++
		w.open[k]++
		w.mu.Unlock()
		return true, &trackedWatch{Interface: filtered, onStop: func() {
			w.mu.Lock()
			w.open[k]--
			w.mu.Unlock()
		}}, nil
	})
	return client, w
}

// newManager returns a Manager over client, stopped when the test ends.
func newManager(t *testing.T, client *fake.Clientset) (context.Context, *Manager) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	m := New(ctx, client, WithSyncTimeout(wait.ForeverTestTimeout))
	t.Cleanup(func() {
		cancel()
		m.Stop()
	})
	return ctx, m
}

func configMap(name, value string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string]string{"k": value}}
}

func secret(name, value string) *v1.Secret {
	return &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{"k": []byte(value)}}
}

// podWith returns a pod in namespace ns referencing configMaps through
// volumes and secrets through env.
func podWith(uid types.UID, configMaps []string, secrets []string) *v1.Pod {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: string(uid), UID: uid}}
	for _, name := range configMaps {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: name, VolumeSource: v1.VolumeSource{
			ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: name}},
		}})
	}
	c := v1.Container{Name: "app"}
	for _, name := range secrets {
		c.Env = append(c.Env, v1.EnvVar{Name: "V", ValueFrom: &v1.EnvVarSource{
			SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: "k"},
		}})
	}
	pod.Spec.Containers = []v1.Container{c}
	return pod
}

// waitFor polls cond until it holds or the test times out.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func verbs(client *fake.Clientset, verb string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

func TestOneWatchPerReferencedObject(t *testing.T) {
	client, w := newClient(t, configMap("a", "1"), configMap("b", "1"), secret("s", "1"))
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"a", "b"}, []string{"s"}))
	m.RegisterPod(podWith("p2", []string{"a"}, []string{"s"}))
	// Re-registering an unchanged pod, as every sync does, opens nothing.
	m.RegisterPod(podWith("p1", []string{"a", "b"}, []string{"s"}))

	for _, name := range []string{"a", "b"} {
		if _, err := m.ConfigMap(ctx, "ns", name); err != nil {
			t.Fatalf("ConfigMap %s: %v", name, err)
		}
	}
	if _, err := m.Secret(ctx, "ns", "s"); err != nil {
		t.Fatalf("Secret: %v", err)
	}
	for _, want := range []struct{ resource, name string }{{"configmaps", "a"}, {"configmaps", "b"}, {"secrets", "s"}} {
		sel := "metadata.name=" + want.name
		waitFor(ctx, t, want.resource+" "+sel+" watched", func() bool { _, open := w.counts(want.resource, sel); return open == 1 })
		if opened, _ := w.counts(want.resource, sel); opened != 1 {
			t.Errorf("%s %s: %d watches opened, want 1", want.resource, sel, opened)
		}
	}
	if n := w.openTotal(); n != 3 {
		t.Errorf("%d watches open, want 3 (one per referenced object)", n)
	}
	// Every list was for one object, by name.
	for _, a := range client.Actions() {
		if l, ok := a.(clienttesting.ListActionImpl); ok {
			if sel := l.ListOptions.FieldSelector; len(sel) < len("metadata.name=") || sel[:len("metadata.name=")] != "metadata.name=" {
				t.Errorf("list %s with field selector %q, want one on metadata.name", a.GetResource().Resource, sel)
			}
		}
	}
}

func TestNoWatchAfterUnregister(t *testing.T) {
	client, w := newClient(t, configMap("a", "1"), configMap("b", "1"), secret("s", "1"))
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"a", "b"}, []string{"s"}))
	m.RegisterPod(podWith("p2", []string{"a"}, nil))
	waitFor(ctx, t, "three watches", func() bool { return w.openTotal() == 3 })

	m.UnregisterPod("p1")
	waitFor(ctx, t, "the watches only p1 needed to stop", func() bool {
		_, a := w.counts("configmaps", "metadata.name=a")
		_, b := w.counts("configmaps", "metadata.name=b")
		_, s := w.counts("secrets", "metadata.name=s")
		return a == 1 && b == 0 && s == 0
	})
	if _, err := m.ConfigMap(ctx, "ns", "a"); err != nil {
		t.Errorf("ConfigMap a, still referenced by p2: %v", err)
	}
	if _, err := m.ConfigMap(ctx, "ns", "b"); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap b after its last pod left: err %v, want a not-registered error (not NotFound)", err)
	}

	m.UnregisterPod("p2")
	m.UnregisterPod("p2") // twice is harmless
	waitFor(ctx, t, "every watch to stop", func() bool { return w.openTotal() == 0 })
	if got := slices.Concat(m.configMaps.watched(), m.secrets.watched()); len(got) != 0 {
		t.Errorf("still watching %v", got)
	}
}

func TestRegisterPodFollowsChangedReferences(t *testing.T) {
	client, w := newClient(t, configMap("a", "1"), secret("s", "1"), secret("debug", "1"))
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"a"}, []string{"s"}))
	waitFor(ctx, t, "two watches", func() bool { return w.openTotal() == 2 })

	// An ephemeral container adds a reference; the volume is gone.
	pod := podWith("p1", nil, []string{"s"})
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{
		Name:    "debugger",
		EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "debug"}}}},
	}}}
	m.RegisterPod(pod)
	waitFor(ctx, t, "the debug secret watched, the configMap not", func() bool {
		_, a := w.counts("configmaps", "metadata.name=a")
		_, s := w.counts("secrets", "metadata.name=s")
		_, d := w.counts("secrets", "metadata.name=debug")
		return a == 0 && s == 1 && d == 1
	})
	if opened, _ := w.counts("secrets", "metadata.name=s"); opened != 1 {
		t.Errorf("secret s watched %d times, want 1: a reference kept must keep its watch", opened)
	}
	if _, err := m.Secret(ctx, "ns", "debug"); err != nil {
		t.Errorf("Secret debug: %v", err)
	}
}

func TestUpdatesSeenWithoutGet(t *testing.T) {
	client, _ := newClient(t, configMap("a", "1"), secret("s", "1"))
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"a"}, []string{"s"}))
	cm, err := m.ConfigMap(ctx, "ns", "a")
	if err != nil || cm.Data["k"] != "1" {
		t.Fatalf("ConfigMap = %v, %v; want k=1", cm, err)
	}

	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, configMap("a", "2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("ns").Update(ctx, secret("s", "2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the updates in the cache", func() bool {
		cm, err1 := m.ConfigMap(ctx, "ns", "a")
		s, err2 := m.Secret(ctx, "ns", "s")
		return err1 == nil && err2 == nil && cm.Data["k"] == "2" && string(s.Data["k"]) == "2"
	})
	// Many reads, as many syncs make: still no GET, one list per object.
	for range 100 {
		if _, err := m.ConfigMap(ctx, "ns", "a"); err != nil {
			t.Fatal(err)
		}
	}
	if n := verbs(client, "get"); n != 0 {
		t.Errorf("%d GETs, want 0: reads come from the watch", n)
	}
	if n := verbs(client, "list"); n != 2 {
		t.Errorf("%d lists, want 2 (one per object)", n)
	}
}

func TestNotFoundAsTheAPI(t *testing.T) {
	client, _ := newClient(t)
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"missing"}, []string{"missing"}))

	_, err := m.ConfigMap(ctx, "ns", "missing")
	if !apierrors.IsNotFound(err) || err.Error() != `configmap "missing" not found` {
		t.Errorf("ConfigMap: err %v, want NotFound worded as the kubelet's", err)
	}
	_, err = m.Secret(ctx, "ns", "missing")
	if !apierrors.IsNotFound(err) || err.Error() != `secret "missing" not found` {
		t.Errorf("Secret: err %v, want NotFound worded as the kubelet's", err)
	}

	// Created later, it arrives through the watch.
	if _, err := client.CoreV1().ConfigMaps("ns").Create(ctx, configMap("missing", "now"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the created configMap", func() bool {
		cm, err := m.ConfigMap(ctx, "ns", "missing")
		return err == nil && cm.Data["k"] == "now"
	})
	// And a deletion makes it NotFound again.
	if err := client.CoreV1().ConfigMaps("ns").Delete(ctx, "missing", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the deletion", func() bool {
		_, err := m.ConfigMap(ctx, "ns", "missing")
		return apierrors.IsNotFound(err)
	})
	if n := verbs(client, "get"); n != 0 {
		t.Errorf("%d GETs, want 0", n)
	}
}

func TestImmutableObjectStopsItsWatch(t *testing.T) {
	s := secret("s", "1")
	s.Immutable = new(bool)
	*s.Immutable = true
	client, w := newClient(t, s, configMap("a", "1"))
	ctx, m := newManager(t, client)
	m.RegisterPod(podWith("p1", []string{"a"}, []string{"s"}))
	if _, err := m.Secret(ctx, "ns", "s"); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the immutable secret's watch to stop", func() bool {
		_, open := w.counts("secrets", "metadata.name=s")
		return open == 0
	})
	// Still served, from the store, while the pod references it.
	got, err := m.Secret(ctx, "ns", "s")
	if err != nil || string(got.Data["k"]) != "1" {
		t.Errorf("Secret after its watch stopped = %v, %v", got, err)
	}
	if opened, _ := w.counts("secrets", "metadata.name=s"); opened != 1 {
		t.Errorf("immutable secret watched %d times, want 1: a read must not restart its watch", opened)
	}
	if _, open := w.counts("configmaps", "metadata.name=a"); open != 1 {
		t.Errorf("%d watches on the mutable configMap, want 1", open)
	}
	if slices.Contains(m.secrets.watched(), objectKey{"ns", "s"}) {
		t.Error("immutable secret still watched")
	}
}

func TestGetWaitsBrieflyForTheFirstList(t *testing.T) {
	client, _ := newClient(t)
	unavailable := apierrors.NewServiceUnavailable("etcd is away")
	client.PrependReactor("list", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, unavailable
	})
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	m := New(ctx, client, WithSyncTimeout(50*time.Millisecond))
	defer func() { cancel(); m.Stop() }()
	m.RegisterPod(podWith("p1", []string{"a"}, nil))

	start := time.Now()
	_, err := m.ConfigMap(ctx, "ns", "a")
	if err == nil || apierrors.IsNotFound(err) {
		t.Fatalf("ConfigMap with the API server away: err %v, want a sync error (not NotFound)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ConfigMap took %v, want about the sync timeout", d)
	}
}

func TestStopEndsEveryWatch(t *testing.T) {
	client, w := newClient(t, configMap("a", "1"), secret("s", "1"))
	_, ctx := ktesting.NewTestContext(t)
	m := New(ctx, client)
	m.RegisterPod(podWith("p1", []string{"a"}, []string{"s"}))
	waitFor(ctx, t, "two watches", func() bool { return w.openTotal() == 2 })
	m.Stop()
	if n := w.openTotal(); n != 0 {
		t.Errorf("%d watches open after Stop, want 0", n)
	}
	m.RegisterPod(podWith("p2", []string{"b"}, nil))
	if got := m.configMaps.watched(); len(got) != 0 {
		t.Errorf("watching %v after Stop", got)
	}
}

func TestReferencesOf(t *testing.T) {
	ref := func(name string) v1.LocalObjectReference { return v1.LocalObjectReference{Name: name} }
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: v1.PodSpec{
		ImagePullSecrets: []v1.LocalObjectReference{ref("pull"), ref("")},
		InitContainers: []v1.Container{{Name: "init", EnvFrom: []v1.EnvFromSource{
			{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: ref("init-cm")}},
			{SecretRef: &v1.SecretEnvSource{LocalObjectReference: ref("init-secret")}},
		}}},
		Containers: []v1.Container{{Name: "app", Env: []v1.EnvVar{
			{Name: "A", Value: "plain"},
			{Name: "B", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: ref("env-cm"), Key: "k"}}},
			{Name: "C", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: ref("env-secret"), Key: "k"}}},
			{Name: "D", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}}},
		EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", EnvFrom: []v1.EnvFromSource{
			{SecretRef: &v1.SecretEnvSource{LocalObjectReference: ref("debug-secret")}},
		}}}},
		Volumes: []v1.Volume{
			{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
			{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "projected", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: ref("proj-cm")}},
				{Secret: &v1.SecretProjection{LocalObjectReference: ref("proj-secret")}},
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}},
			}}}},
			{Name: "empty", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		},
	}}
	got := referencesOf(pod)
	if want := sets.New("init-cm", "env-cm", "vol-cm", "proj-cm"); !got.configMaps.Equal(want) {
		t.Errorf("configMaps %v, want %v", sets.List(got.configMaps), sets.List(want))
	}
	if want := sets.New("pull", "init-secret", "env-secret", "debug-secret", "vol-secret", "proj-secret"); !got.secrets.Equal(want) {
		t.Errorf("secrets %v, want %v", sets.List(got.secrets), sets.List(want))
	}
	if got.namespace != "ns" {
		t.Errorf("namespace %q, want ns", got.namespace)
	}
}

func TestIdleWatchStopsAndRestartsOnRead(t *testing.T) {
	client, w := newClient(t, configMap("env", "1"), configMap("vol", "1"))
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	clk := testingclock.NewFakeClock(time.Now())
	m := New(ctx, client, WithMaxIdle(5*time.Minute), WithClock(clk), WithSyncTimeout(wait.ForeverTestTimeout))
	defer func() { cancel(); m.Stop() }()
	m.RegisterPod(podWith("p1", []string{"env", "vol"}, nil))
	for _, name := range []string{"env", "vol"} {
		if _, err := m.ConfigMap(ctx, "ns", name); err != nil {
			t.Fatal(err)
		}
	}

	// "vol" is read every minute, as volumes are on every sync; "env" is
	// not read again.
	for range 6 {
		waitFor(ctx, t, "the idle check's ticker", clk.HasWaiters)
		clk.Step(time.Minute)
		if _, err := m.ConfigMap(ctx, "ns", "vol"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(ctx, t, "the idle watch to stop", func() bool {
		_, env := w.counts("configmaps", "metadata.name=env")
		return env == 0
	})
	if _, vol := w.counts("configmaps", "metadata.name=vol"); vol != 1 {
		t.Errorf("%d watches on the configMap read every minute, want 1", vol)
	}

	// Changed while nobody watched: a read restarts the watch and waits
	// for a fresh list.
	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, configMap("env", "2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := m.ConfigMap(ctx, "ns", "env")
	if err != nil || cm.Data["k"] != "2" {
		t.Errorf("ConfigMap after an idle stop = %v, %v; want k=2", cm, err)
	}
	if opened, open := w.counts("configmaps", "metadata.name=env"); opened != 2 || open != 1 {
		t.Errorf("env watches opened %d, open %d; want 2 and 1", opened, open)
	}
}
