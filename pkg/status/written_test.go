package status

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	fieldpkg "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// stampResourceVersions makes the fake API server give every pod it
// writes (patch, update) a new resourceVersion, as a real one does; the
// fake's object tracker leaves them as they are. Pods start at "1".
func stampResourceVersions(t *testing.T, client *fake.Clientset) {
	t.Helper()
	var mu sync.Mutex
	rv := 1
	next := func() string {
		mu.Lock()
		defer mu.Unlock()
		rv++
		return strconv.Itoa(rv)
	}
	gvr := v1.SchemeGroupVersion.WithResource("pods")
	client.PrependReactor("update", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		pod := a.(clienttesting.UpdateAction).GetObject().(*v1.Pod).DeepCopy()
		pod.ResourceVersion = next()
		if err := client.Tracker().Update(gvr, pod, pod.Namespace); err != nil {
			return true, nil, err
		}
		return true, pod, nil
	})
	client.PrependReactor("patch", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p := a.(clienttesting.PatchAction)
		obj, err := client.Tracker().Get(gvr, p.GetNamespace(), p.GetName())
		if err != nil {
			return true, nil, err
		}
		old, err := json.Marshal(obj)
		if err != nil {
			return true, nil, err
		}
		b, err := strategicpatch.StrategicMergePatch(old, p.GetPatch(), v1.Pod{})
		if err != nil {
			return true, nil, fmt.Errorf("apply patch: %w", err)
		}
		pod := &v1.Pod{}
		if err := json.Unmarshal(b, pod); err != nil {
			return true, nil, err
		}
		pod.ResourceVersion = next()
		if err := client.Tracker().Update(gvr, pod, pod.Namespace); err != nil {
			return true, nil, err
		}
		return true, pod, nil
	})
}

// newStampingManager is newTestManager with a pod at resourceVersion "1"
// and an API server that stamps resourceVersions.
func newStampingManager(t *testing.T, mutate ...func(*v1.Pod)) (*Manager, *fake.Clientset, *podstatetest.PodCache, *v1.Pod) {
	t.Helper()
	pod := podstatetest.Pod(mutate...)
	pod.ResourceVersion = "1"
	m, client, cache := newTestManager(t, pod)
	stampResourceVersions(t, client)
	return m, client, cache, pod
}

// stateWithDebuggerExited is stateWithIP with ephemeral container "debug"
// exited.
func stateWithDebuggerExited(ip string) *podstate.PodState {
	s := stateWithIP(ip)
	s.Containers = append(s.Containers, podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Exited, 0, 0))
	s.Sort()
	return s
}

// setAndSend sets the status of state for pod and sends it at once.
func setAndSend(ctx context.Context, t *testing.T, m *Manager, pod *v1.Pod, state *podstate.PodState) {
	t.Helper()
	m.SetPodStatus(pod, state, nil)
	if err := m.send(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
}

// TestManagerComparesWithItsLastWrite is the regression test of a status
// patched again and again: after a patch lands, the cache still holds the
// pod from before it until the informer sees the write, and the next syncs
// (the write's own echo among them) set the same status again.
func TestManagerComparesWithItsLastWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pod   []func(*v1.Pod)
		first *podstate.PodState
		// between is what happens after the first patch landed: nil
		// leaves the cache behind it.
		between     func(ctx context.Context, t *testing.T, client *fake.Clientset, cache *podstatetest.PodCache, pod *v1.Pod)
		second      *podstate.PodState
		wantPatches int
		check       func(t *testing.T, second clienttesting.PatchAction, api *v1.Pod)
	}{
		{
			name:        "same status, cache behind: not sent again",
			first:       stateWithIP("10.0.0.1"),
			second:      stateWithIP("10.0.0.1"),
			wantPatches: 1,
		},
		{
			name:        "changed status, cache behind: only the change is sent",
			first:       stateWithIP("10.0.0.1"),
			second:      stateWithIP("10.0.0.2"),
			wantPatches: 2,
			check: func(t *testing.T, second clienttesting.PatchAction, api *v1.Pod) {
				// Computed from the cache, the patch would carry the
				// whole status again.
				status, _ := decodePatch(t, second)["status"].(map[string]any)
				for _, unchanged := range []string{"phase", "conditions", "containerStatuses", "startTime"} {
					if _, ok := status[unchanged]; ok {
						t.Errorf("patch carries status.%s the last write set already: %s", unchanged, second.GetPatch())
					}
				}
				if api.Status.PodIP != "10.0.0.2" || api.Status.Phase != v1.PodRunning || findPodCondition(api.Status.Conditions, v1.ContainersReady) == nil {
					t.Errorf("API holds podIP %q phase %q conditions %v, want the second status whole", api.Status.PodIP, api.Status.Phase, api.Status.Conditions)
				}
			},
		},
		{
			name:        "exited ephemeral container seen running again, cache behind: no regression",
			pod:         []func(*v1.Pod){podstatetest.WithEphemeral("app", "debug")},
			first:       stateWithDebuggerExited("10.0.0.1"),
			second:      stateWithDebugger("10.0.0.1"),
			wantPatches: 1,
			check: func(t *testing.T, _ clienttesting.PatchAction, api *v1.Pod) {
				if s := api.Status.EphemeralContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil {
					t.Errorf("API holds ephemeral statuses %+v, want debug terminated", s)
				}
			},
		},
		{
			name:  "cache caught up: compared with the cache",
			first: stateWithIP("10.0.0.1"),
			between: func(ctx context.Context, t *testing.T, client *fake.Clientset, cache *podstatetest.PodCache, pod *v1.Pod) {
				cache.Set(apiPod(ctx, t, client, pod))
			},
			second:      stateWithIP("10.0.0.1"),
			wantPatches: 1,
		},
		{
			name:  "another writer changed the pod since: compared with the cache",
			first: stateWithIP("10.0.0.1"),
			between: func(ctx context.Context, t *testing.T, client *fake.Clientset, cache *podstatetest.PodCache, pod *v1.Pod) {
				newer := apiPod(ctx, t, client, pod)
				newer.Status.PodIP = "10.9.9.9"
				newer, err := client.CoreV1().Pods(newer.Namespace).UpdateStatus(ctx, newer, metav1.UpdateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cache.Set(newer)
			},
			second:      stateWithIP("10.0.0.1"),
			wantPatches: 2,
			check: func(t *testing.T, _ clienttesting.PatchAction, api *v1.Pod) {
				if api.Status.PodIP != "10.0.0.1" {
					t.Errorf("API holds podIP %q, want the agent's 10.0.0.1 back", api.Status.PodIP)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			m, client, cache, pod := newStampingManager(t, tc.pod...)
			setAndSend(ctx, t, m, pod, tc.first)
			if n := len(statusPatches(client)); n != 1 {
				t.Fatalf("%d status patches of the first status, want 1", n)
			}
			if tc.between != nil {
				tc.between(ctx, t, client, cache, pod)
			}
			// As a sync does, from the pod the cache holds.
			cached, _ := cache.GetPodByUID(pod.UID)
			setAndSend(ctx, t, m, cached, tc.second)
			// The write's echo syncs the pod once more, to the same status.
			setAndSend(ctx, t, m, cached, tc.second)
			patches := statusPatches(client)
			if len(patches) != tc.wantPatches {
				for _, p := range patches {
					t.Logf("patch: %s", p.GetPatch())
				}
				t.Fatalf("%d status patches, want %d", len(patches), tc.wantPatches)
			}
			if tc.check != nil {
				tc.check(t, patches[len(patches)-1], apiPod(ctx, t, client, pod))
			}
		})
	}
}

// Patches made while the cache lags behind them chain: each is compared
// with the one before, whichever of them the cache shows meanwhile.
func TestManagerChainsWritesWhileCacheLags(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	m, client, cache, pod := newStampingManager(t)
	setAndSend(ctx, t, m, pod, stateWithIP("10.0.0.1"))
	first := apiPod(ctx, t, client, pod)
	setAndSend(ctx, t, m, pod, stateWithIP("10.0.0.2"))
	if n := len(statusPatches(client)); n != 2 {
		t.Fatalf("%d status patches, want 2", n)
	}
	// The cache sees the first write, not yet the second.
	cache.Set(first)
	setAndSend(ctx, t, m, first, stateWithIP("10.0.0.2"))
	if n := len(statusPatches(client)); n != 2 {
		t.Errorf("%d status patches after the cache saw the first write, want still 2", n)
	}
	if got := apiPod(ctx, t, client, pod).Status.PodIP; got != "10.0.0.2" {
		t.Errorf("API holds podIP %q, want 10.0.0.2", got)
	}
}

// withResourceVersion is a probe of TestManagerOwnWrite: the API's pod at
// another resourceVersion.
func withResourceVersion(rv string) func(*v1.Pod) *v1.Pod {
	return func(api *v1.Pod) *v1.Pod {
		p := api.DeepCopy()
		p.ResourceVersion = rv
		return p
	}
}

// withUID is a probe of TestManagerOwnWrite: another pod of the API's
// pod's resourceVersion.
func withUID(uid types.UID) func(*v1.Pod) *v1.Pod {
	return func(api *v1.Pod) *v1.Pod {
		p := api.DeepCopy()
		p.UID = uid
		return p
	}
}

func TestManagerOwnWrite(t *testing.T) {
	const gate = v1.PodConditionType("example.com/load-balancer")
	for _, tc := range []struct {
		name string
		// before is what happens in the API before the agent's patch,
		// unseen by the cache.
		before func(ctx context.Context, t *testing.T, client *fake.Clientset, pod *v1.Pod)
		// after is what happens after the patch; nil forgets nothing.
		after func(m *Manager, pod *v1.Pod)
		// probe returns the informer's pod to ask about, given the API's.
		probe func(api *v1.Pod) *v1.Pod
		want  bool
	}{
		{
			name:  "the patch's answer",
			probe: func(api *v1.Pod) *v1.Pod { return api },
			want:  true,
		},
		{
			name:  "the pod the patch was computed from",
			probe: withResourceVersion("1"),
		},
		{
			name:  "a later write",
			probe: withResourceVersion("100"),
		},
		{
			name:  "another pod of that resourceVersion",
			probe: withUID("other"),
		},
		{
			name:  "no resourceVersion",
			probe: withResourceVersion(""),
		},
		{
			name:  "pod forgotten",
			after: func(m *Manager, pod *v1.Pod) { m.ForgetPod(pod.UID) },
			probe: func(api *v1.Pod) *v1.Pod { return api },
		},
		{
			// The patch did not know of the gate's condition: the pod's
			// Ready may yet have to follow it.
			name: "the answer holds another writer's change",
			before: func(ctx context.Context, t *testing.T, client *fake.Clientset, pod *v1.Pod) {
				p := apiPod(ctx, t, client, pod)
				p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: gate, Status: v1.ConditionTrue})
				if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			probe: func(api *v1.Pod) *v1.Pod { return api },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			m, client, _, pod := newStampingManager(t)
			if m.OwnWrite(pod) {
				t.Error("OwnWrite true before any patch")
			}
			if tc.before != nil {
				tc.before(ctx, t, client, pod)
			}
			setAndSend(ctx, t, m, pod, stateWithIP("10.0.0.1"))
			if tc.after != nil {
				tc.after(m, pod)
			}
			api := apiPod(ctx, t, client, pod)
			if got := m.OwnWrite(tc.probe(api)); got != tc.want {
				t.Errorf("OwnWrite = %v, want %v", got, tc.want)
			}
		})
	}
}

// A status sent without its refused container statuses is the last write
// too: what landed is not sent again while the cache lags.
func TestManagerRefusedFallbackIsLastWrite(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	m, client, _, pod := newStampingManager(t, podstatetest.WithEphemeral("app", "debug"))
	refuse(client, "ephemeralContainerStatuses", invalid(pod, fieldpkg.NewPath("status", "ephemeralContainerStatuses").Index(0).Child("state")))
	setAndSend(ctx, t, m, pod, stateWithDebugger("10.0.0.1"))
	// fallbacks counts the patches without the refused statuses.
	fallbacks := func(client *fake.Clientset) int {
		n := 0
		for _, p := range statusPatches(client) {
			if !strings.Contains(string(p.GetPatch()), "ephemeralContainerStatuses") {
				n++
			}
		}
		return n
	}
	if n := fallbacks(client); n != 1 {
		t.Fatalf("%d status patches without the refused statuses, want 1", n)
	}
	if !m.OwnWrite(apiPod(ctx, t, client, pod)) {
		t.Error("OwnWrite false for the fallback's answer")
	}
	// The same status again: refused again, and what is left of it is what
	// landed already.
	setAndSend(ctx, t, m, pod, stateWithDebugger("10.0.0.1"))
	if got := fallbacks(client); got != 1 {
		t.Errorf("%d status patches without the refused statuses, want still 1", got)
	}
}

// A status whose times have nanoseconds (the runtime's) is sent once: the
// API keeps whole seconds of them, and compared with the API's copy the
// same status would differ on every sync and be sent again.
func TestManagerSendsRuntimeTimesOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	m, client, cache, pod := newStampingManager(t, podstatetest.WithEphemeral("app", "debug"))
	state := stateWithDebuggerExited("10.0.0.1")
	for i := range state.Containers {
		c := &state.Containers[i]
		c.StartedAt = c.StartedAt.Add(123456789 * time.Nanosecond)
		if !c.FinishedAt.IsZero() {
			c.FinishedAt = c.FinishedAt.Add(987654321 * time.Nanosecond)
		}
	}
	setAndSend(ctx, t, m, pod, state)
	// The informer catches up with the write, then the pod syncs again.
	cache.Set(apiPod(ctx, t, client, pod))
	setAndSend(ctx, t, m, pod, state)
	if n := len(statusPatches(client)); n != 1 {
		t.Errorf("%d patches, want 1", n)
	}
}
