package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// Recorder emits Events (client-go's record.EventRecorder satisfies it).
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{})
}

// ReasonFailedStatusUpdate is the reason of the Warning Event on a pod
// whose status the API server refused as invalid.
const ReasonFailedStatusUpdate = "FailedStatusUpdate"

// Manager computes pod statuses and sends them to the API server.
//
// Updates are coalesced per pod: SetPodStatus only records the newest
// status and enqueues the pod; a sender patches the newest one. A failed
// patch is retried with backoff until it lands or the pod is gone, so the
// last status is never lost, though intermediate ones may be skipped. A
// status equal to what the API already holds is not sent, and none goes
// backwards from it (NoRegression). What others own in the status (their
// conditions, the nominated node, ...) is taken from the cached pod at
// patch time (Merge), never from the older pod the status was computed
// from.
//
// A patch the API server refuses as invalid is not retried as it is: the
// same status would be refused forever, and with it everything else the
// status says. It is sent once more with the container statuses that were
// refused (every ephemeral container's, and those the error names) left as
// the API holds them; if that is refused too, the pending status is dropped
// until the next SetPodStatus. Each refusal is told once, in a Warning
// Event FailedStatusUpdate on the pod.
//
// The cache lags behind the manager's own patches: until it sees one, the
// status the patch returned, not the cache's, is what a new status is
// compared with and kept from going backwards, so a status just sent is
// not sent again (OwnWrite tells the informer's copy of that write).
type Manager struct {
	client   kubernetes.Interface
	pods     PodGetter
	recorder Recorder
	node     NodeInfo
	clock    clock.Clock
	queue    workqueue.TypedRateLimitingInterface[types.UID]

	mu      sync.Mutex
	desired map[types.UID]*pending // status to send, by pod
	// refusals holds, per pod, the key (refusalKey) of the last refusal
	// told in an Event, so a status refused again is not told again.
	refusals map[types.UID]string
	// written holds, per pod, what the last patch that landed returned.
	written map[types.UID]*written
}

// written is what the last patch of a pod's status that landed returned,
// and the cached pods that are older than it.
type written struct {
	// pod is the API server's answer to the patch: the pod with it.
	pod *v1.Pod
	// behind are the resourceVersions of the cached pods the patches since
	// the cache last caught up were computed from, and of those patches'
	// answers but the last: a cached pod of one of them has not seen pod.
	behind []string
	// clean tells that nothing others own in the status changed between
	// the pod the patch was computed from and pod: pod holds no other
	// writer's change the patch did not know of.
	clean bool
}

// NewManager returns a Manager; Run sends the statuses. recorder emits the
// Events of refused statuses.
func NewManager(client kubernetes.Interface, pods PodGetter, recorder Recorder, node NodeInfo, clk clock.Clock) *Manager {
	return &Manager{
		client:   client,
		pods:     pods,
		recorder: recorder,
		node:     node,
		clock:    clk,
		refusals: map[types.UID]string{},
		written:  map[types.UID]*written{},
		// Failed patches back off up to the kubelet's status sync period
		// (10s): after an API server outage, every status lands within it
		// of the server's return.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](200*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pod-status"}),
		desired: map[types.UID]*pending{},
	}
}

// pending is a status waiting to be sent and the pod it was computed for.
// The pod is the cache's object, shared and never written to: holding it
// spares a deep copy of the whole pod on every sync, when only the status
// is the manager's own.
type pending struct {
	pod    *v1.Pod
	status v1.PodStatus
}

// SetPodStatus records the status implied by state and waiting, and asks
// for it to be sent.
func (m *Manager) SetPodStatus(pod *v1.Pod, state *podstate.PodState, waiting map[podstate.ContainerKey]podstate.Waiting) {
	p := &pending{pod: pod, status: Compute(pod, state, waiting, m.node, m.clock.Now())}
	m.mu.Lock()
	m.desired[pod.UID] = p
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}

// ForgetPod drops the pending status of a pod that is gone.
func (m *Manager) ForgetPod(uid types.UID) {
	m.mu.Lock()
	delete(m.desired, uid)
	delete(m.refusals, uid)
	delete(m.written, uid)
	m.mu.Unlock()
}

// OwnWrite reports whether pod, as the informer delivers it, is exactly
// the result of the manager's last patch of its status: nothing but that
// patch changed the pod since the patch was computed. An update of the pod
// to it brings the agent no news, so it need not sync the pod again; any
// other writer's change gives another resourceVersion.
func (m *Manager) OwnWrite(pod *v1.Pod) bool {
	if pod.ResourceVersion == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.written[pod.UID]
	return w != nil && w.clean && w.pod.ResourceVersion == pod.ResourceVersion
}

// base returns the pod a status for the pod cached as cur is to be
// compared with: the answer of the last patch that landed while the cache
// has not seen it yet, else cur. fromWritten is the record of that
// answer, nil when base is cur.
func (m *Manager) base(cur *v1.Pod) (base *v1.Pod, fromWritten *written) {
	if cur.ResourceVersion == "" {
		return cur, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.written[cur.UID]
	if w == nil || !slices.Contains(w.behind, cur.ResourceVersion) {
		return cur, nil
	}
	return w.pod, w
}

// landed records got, the API server's answer to a patch of the pod's
// status computed from base, which the cache held as cur (prev is the
// record base came from, nil when it is cur).
func (m *Manager) landed(cur, base *v1.Pod, prev *written, got *v1.Pod) {
	if got == nil || got.UID != cur.UID {
		return
	}
	w := &written{pod: got, behind: []string{cur.ResourceVersion}, clean: othersEqual(&base.Status, &got.Status)}
	if prev != nil {
		// The cache may yet show any pod between cur and got.
		w.behind = append(slices.Clone(prev.behind), prev.pod.ResourceVersion)
		w.clean = w.clean && prev.clean
	}
	m.mu.Lock()
	m.written[cur.UID] = w
	m.mu.Unlock()
}

// drop drops the pending status want of the pod, unless SetPodStatus
// replaced it since: a newer status is always sent.
func (m *Manager) drop(uid types.UID, want *pending) {
	m.mu.Lock()
	if m.desired[uid] == want {
		delete(m.desired, uid)
	}
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
// cached pod's. A nil error means the status is done with (sent, not
// needed, or given up); an error, that it is to be retried.
func (m *Manager) send(ctx context.Context, uid types.UID) error {
	m.mu.Lock()
	want := m.desired[uid]
	m.mu.Unlock()
	if want == nil {
		return nil
	}
	cached, ok := m.pods.GetPodByUID(uid)
	if !ok {
		m.ForgetPod(uid)
		return nil
	}
	// Until the cache sees the last patch, its answer is the newest
	// status known: compared with the cache's, a status just sent would be
	// sent again.
	cur, prev := m.base(cached)
	// The cache may have seen a newer status than the pod the status was
	// computed from: it still must not go backwards from it, nor undo what
	// other writers set meanwhile (their conditions above all).
	status := want.status.DeepCopy()
	NoRegression(&cur.Status, status, want.pod)
	status = Merge(cur, &cur.Status, status, m.clock.Now())
	normalize(status)
	got, err := m.patch(ctx, want.pod, &cur.Status, status)
	if apierrors.IsInvalid(err) {
		got, err = m.refused(ctx, want, &cur.Status, status, err)
	} else if err == nil {
		// It landed whole: a later refusal is news again.
		m.mu.Lock()
		delete(m.refusals, uid)
		m.mu.Unlock()
	}
	if err == nil {
		m.landed(cached, cur, prev, got)
	}
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
	return nil
}

// patch sends status for pod as a patch from cur, the newest status
// known; it sends nothing when they are equal. It returns the API server's
// answer, the patched pod; nil when it sent nothing.
func (m *Manager) patch(ctx context.Context, pod *v1.Pod, cur, status *v1.PodStatus) (*v1.Pod, error) {
	if apiequality.Semantic.DeepEqual(cur, status) {
		return nil, nil
	}
	patch, err := statusPatch(pod.UID, cur, status)
	if err != nil {
		return nil, err
	}
	got, err := m.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(3).Info("Patched pod status", "pod", klog.KObj(pod), "phase", status.Phase, "resourceVersion", got.ResourceVersion)
	return got, nil
}

// refused handles status, which the API server refused as invalid with
// err: it tells the refusal once, then sends the status once more with the
// refused container statuses left as the API holds them, so that the rest
// (phase, conditions, the other containers) lands. Whatever that second
// patch gives, the refused status is not sent again: retried as it is, it
// would be refused forever. It returns the second patch's answer (nil
// when none landed) and the error to retry for, if any.
func (m *Manager) refused(ctx context.Context, want *pending, cur, status *v1.PodStatus, err error) (*v1.Pod, error) {
	pod := want.pod
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod))
	msg := err.Error()
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		msg = apiStatus.Status().Message
	}
	fallback, withheld := withholdRefused(cur, status, err)
	key := refusalKey(msg, withheld)
	m.mu.Lock()
	news := m.refusals[pod.UID] != key
	m.refusals[pod.UID] = key
	m.mu.Unlock()
	if news {
		logger.Error(err, "API server refused the pod status as invalid, sending it without the refused container statuses")
		if m.recorder != nil {
			m.recorder.Eventf(pod, v1.EventTypeWarning, ReasonFailedStatusUpdate, "Pod status update refused by the API server: %s", msg)
		}
	} else {
		logger.V(2).Info("API server refused the pod status as invalid again, sending it without the refused container statuses", "err", err)
	}
	got, err := m.patch(ctx, pod, cur, fallback)
	switch {
	case err == nil:
		// What could land did; the refused part waits for a new status.
		m.drop(pod.UID, want)
		return got, nil
	case apierrors.IsInvalid(err):
		if news {
			logger.Error(err, "API server refused the pod status without the refused container statuses too, dropping it until the next status")
		}
		m.drop(pod.UID, want)
		return nil, nil
	}
	return nil, err
}

// withholdRefused returns status with the container statuses the API
// server may have refused put back as cur, the cached status, has them: all
// ephemeral container statuses (a list equal to cur's is left out of the
// patch, so the API keeps its own), and the init or regular containers
// named by the error's causes, a whole list when a cause names no one
// container of it. withheld are the statuses of status that were put back.
func withholdRefused(cur, status *v1.PodStatus, err error) (fallback *v1.PodStatus, withheld []v1.ContainerStatus) {
	fallback = status.DeepCopy()
	withheld = append(withheld, status.EphemeralContainerStatuses...)
	fallback.EphemeralContainerStatuses = slices.Clone(cur.EphemeralContainerStatuses)
	lists := []struct {
		field    string
		cur, out *[]v1.ContainerStatus
	}{
		{"status.initContainerStatuses", &cur.InitContainerStatuses, &fallback.InitContainerStatuses},
		{"status.containerStatuses", &cur.ContainerStatuses, &fallback.ContainerStatuses},
	}
	for _, cause := range causes(err) {
		for _, l := range lists {
			rest, ok := strings.CutPrefix(cause.Field, l.field)
			if !ok {
				continue
			}
			// The index is that of the API's (old) list, which the
			// cache's stands for.
			var i int
			if _, err := fmt.Sscanf(rest, "[%d]", &i); err != nil || i < 0 || i >= len(*l.cur) {
				withheld = append(withheld, *l.out...)
				*l.out = slices.Clone(*l.cur)
				continue
			}
			name := (*l.cur)[i].Name
			for j := range *l.out {
				if (*l.out)[j].Name == name {
					withheld = append(withheld, (*l.out)[j])
					(*l.out)[j] = *(*l.cur)[i].DeepCopy()
				}
			}
		}
	}
	return fallback, withheld
}

// causes returns the field causes of an API error.
func causes(err error) []metav1.StatusCause {
	var apiStatus apierrors.APIStatus
	if !errors.As(err, &apiStatus) || apiStatus.Status().Details == nil {
		return nil
	}
	return apiStatus.Status().Details.Causes
}

// refusalKey identifies a refusal by the server's message and the
// statuses it refused, so the same refusal is told once, however often
// the rest of the pod's status changes.
func refusalKey(msg string, withheld []v1.ContainerStatus) string {
	h := sha256.New()
	h.Write([]byte(msg))
	h.Write([]byte{0})
	// Marshalling statuses does not fail; an error would only make the key
	// weaker.
	b, _ := json.Marshal(withheld)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
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
