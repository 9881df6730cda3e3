package status

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// PodGetter returns the pod as the agent's cache last saw it.
type PodGetter interface {
	GetPodByUID(uid types.UID) (*v1.Pod, bool)
}

// Manager computes pod statuses and sends them to the API server.
//
// Updates are coalesced per pod: SetPodStatus only records the newest
// status and enqueues the pod; a sender patches the newest one. A failed
// patch is retried with backoff until it lands or the pod is gone, so the
// last status is never lost, though intermediate ones may be skipped. A
// status equal to what the API already holds is not sent.
type Manager struct {
	client kubernetes.Interface
	pods   PodGetter
	node   NodeInfo
	clock  clock.Clock
	queue  workqueue.TypedRateLimitingInterface[types.UID]

	mu      sync.Mutex
	desired map[types.UID]*v1.Pod // pod with the status to send
}

// NewManager returns a Manager; Run sends the statuses.
func NewManager(client kubernetes.Interface, pods PodGetter, node NodeInfo, clk clock.Clock) *Manager {
	return &Manager{
		client: client,
		pods:   pods,
		node:   node,
		clock:  clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](200*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pod-status"}),
		desired: map[types.UID]*v1.Pod{},
	}
}

// SetPodStatus records the status implied by state and waiting, and asks
// for it to be sent.
func (m *Manager) SetPodStatus(pod *v1.Pod, state *podstate.PodState, waiting map[podstate.ContainerKey]podstate.Waiting) {
	p := pod.DeepCopy()
	p.Status = Compute(pod, state, waiting, m.node, m.clock.Now())
	m.mu.Lock()
	m.desired[pod.UID] = p
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}

// ForgetPod drops the pending status of a pod that is gone.
func (m *Manager) ForgetPod(uid types.UID) {
	m.mu.Lock()
	delete(m.desired, uid)
	m.mu.Unlock()
}

// DeletePod sends the pod's final status, then deletes the pod object with
// grace period 0 and a UID precondition, as the kubelet does once nothing
// of the pod runs any more.
func (m *Manager) DeletePod(ctx context.Context, pod *v1.Pod) error {
	if err := m.send(ctx, pod.UID); err != nil {
		return err
	}
	err := m.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete pod: %w", err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted terminated pod", "pod", klog.KObj(pod))
	return nil
}

// Run sends statuses with workers until ctx ends.
func (m *Manager) Run(ctx context.Context, workers int) {
	defer m.queue.ShutDown()
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				uid, shutdown := m.queue.Get()
				if shutdown {
					return
				}
				if err := m.send(ctx, uid); err != nil {
					klog.FromContext(ctx).V(1).Info("Failed to update pod status, will retry", "podUID", uid, "err", err)
					m.queue.AddRateLimited(uid)
				} else {
					m.queue.Forget(uid)
				}
				m.queue.Done(uid)
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
}

// send patches the newest status of the pod, if it differs from the
// cached pod's.
func (m *Manager) send(ctx context.Context, uid types.UID) error {
	m.mu.Lock()
	want := m.desired[uid]
	m.mu.Unlock()
	if want == nil {
		return nil
	}
	cur, ok := m.pods.GetPodByUID(uid)
	if !ok {
		m.ForgetPod(uid)
		return nil
	}
	if apiequality.Semantic.DeepEqual(cur.Status, want.Status) {
		return nil
	}
	patch, err := statusPatch(uid, &cur.Status, &want.Status)
	if err != nil {
		return err
	}
	_, err = m.client.CoreV1().Pods(want.Namespace).Patch(ctx, want.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	switch {
	case apierrors.IsNotFound(err):
		m.ForgetPod(uid)
		return nil
	case apierrors.IsConflict(err):
		// The UID precondition failed: a new pod of that name replaced it.
		m.ForgetPod(uid)
		return nil
	case err != nil:
		return fmt.Errorf("patch pod status: %w", err)
	}
	klog.FromContext(ctx).V(3).Info("Patched pod status", "pod", klog.KObj(want), "phase", want.Status.Phase)
	return nil
}

// statusPatch is a strategic merge patch from old to new status that also
// asserts the pod's UID, so a status never lands on a pod that replaced
// the one it describes.
func statusPatch(uid types.UID, old, new *v1.PodStatus) ([]byte, error) {
	wrap := func(s *v1.PodStatus) ([]byte, error) {
		return json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: *s})
	}
	o, err := wrap(old)
	if err != nil {
		return nil, fmt.Errorf("marshal old status: %w", err)
	}
	n, err := wrap(new)
	if err != nil {
		return nil, fmt.Errorf("marshal new status: %w", err)
	}
	p, err := strategicpatch.CreateTwoWayMergePatch(o, n, v1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("create status patch: %w", err)
	}
	// CreateTwoWayMergePatch drops the unchanged UID; put it back as the
	// precondition.
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, fmt.Errorf("decode status patch: %w", err)
	}
	m["metadata"] = map[string]any{"uid": uid}
	return json.Marshal(m)
}
