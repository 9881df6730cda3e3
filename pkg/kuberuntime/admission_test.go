package kuberuntime

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/admission"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// fixedAdmission gives one answer, first the first time, as admission.Gate.
type fixedAdmission struct {
	r       admission.Result
	told    bool
	forgot  []types.UID
	decided int
}

func (f *fixedAdmission) Admit(context.Context, *v1.Pod) (admission.Result, bool) {
	f.decided++
	first := !f.r.Admit && !f.told
	f.told = f.told || first
	return f.r, first
}
func (f *fixedAdmission) Forget(uid types.UID) { f.forgot = append(f.forgot, uid) }

// rejectingStatus is a recordingStatus that also reports rejections.
type rejectingStatus struct {
	recordingStatus
	computed, rejected, deleted int
	reason, message             string
}

func (r *rejectingStatus) SetPodStatus(pod *v1.Pod, state *podstate.PodState, w map[podstate.ContainerKey]podstate.Waiting) {
	r.computed++
	r.recordingStatus.SetPodStatus(pod, state, w)
}
func (r *rejectingStatus) RejectPod(_ *v1.Pod, reason, message string) {
	r.rejected++
	r.reason, r.message = reason, message
}
func (r *rejectingStatus) DeletePod(context.Context, *v1.Pod) error { r.deleted++; return nil }

// countingVolumes counts SetUp calls.
type countingVolumes struct{ setUps int }

func (v *countingVolumes) SetUp(context.Context, *v1.Pod) (Mounter, error) {
	v.setUps++
	return noMounter{}, nil
}
func (*countingVolumes) TearDown(context.Context, types.UID) error { return nil }

func TestSyncRejectedPodRunsNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(podstateWithDebugger)
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	st, vols := &rejectingStatus{}, &countingVolumes{}
	adm := &fixedAdmission{r: admission.Result{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"}}
	s.Status, s.Volumes, s.Gate = st, vols, adm

	for range 2 {
		if _, err := s.SyncPod(ctx, pod.UID); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	sandboxes, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sandboxes) != 0 || len(containersNamed(t, rt, "app")) != 0 || len(containersNamed(t, rt, "debug")) != 0 {
		t.Errorf("rejected pod has %d sandboxes and containers in the runtime", len(sandboxes))
	}
	if vols.setUps != 0 {
		t.Errorf("%d volume set-ups for a rejected pod", vols.setUps)
	}
	if st.rejected != 2 || st.computed != 0 || st.reason != "OutOfcpu" || st.message != adm.r.Message {
		t.Errorf("status: %d rejections (%q, %q), %d computed; want the rejection on every sync and nothing computed", st.rejected, st.reason, st.message, st.computed)
	}
	if ev := eventsWith(rec, "OutOfcpu"); len(ev) != 1 || ev[0] != "Warning OutOfcpu "+adm.r.Message {
		t.Errorf("events = %q, want one Warning OutOfcpu", ev)
	}

	// Deleted: it goes at once, nothing of it runs.
	deleting := pod.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	s.Pods = fakePods{deleting}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if st.deleted != 1 {
		t.Errorf("rejected pod being deleted: %d deletions, want 1", st.deleted)
	}
	// Gone: the decision is forgotten.
	s.Pods = fakePods{}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(adm.forgot) != 1 || adm.forgot[0] != pod.UID {
		t.Errorf("forgot %v, want the pod", adm.forgot)
	}
}

func TestSyncAdmittedPodRuns(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	s.Gate = &fixedAdmission{r: admission.Result{Admit: true}}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if n := len(containersNamed(t, rt, "app")); n != 1 {
		t.Errorf("admitted pod: %d app containers, want 1", n)
	}
}

func TestSyncPodRejectedBeforeARestartKeepsItsStatus(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	// As the API holds a pod rejected before the agent restarted, with a
	// debugger added since: the Gate lets terminal pods through.
	pod := testPod(podstateWithDebugger, func(p *v1.Pod) {
		p.Status = v1.PodStatus{Phase: v1.PodFailed, Reason: "PodOSNotSupported", Message: "Pod was rejected: ..."}
	})
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	st := &rejectingStatus{}
	s.Status, s.Gate = st, &fixedAdmission{r: admission.Result{Admit: true}}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if st.computed != 0 {
		t.Errorf("%d statuses computed for a pod that ended before anything of it ran", st.computed)
	}
	if n := len(containersNamed(t, rt, "debug")); n != 0 {
		t.Errorf("%d debuggers started in a rejected pod", n)
	}
}

// podstateWithDebugger adds an ephemeral container "debug" to the pod.
func podstateWithDebugger(p *v1.Pod) {
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}, TargetContainerName: "app"})
}
