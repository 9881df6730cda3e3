package status

import (
	"encoding/json"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestMerge(t *testing.T) {
	const gate = v1.PodConditionType("example.com/gate")
	t0 := metav1.NewTime(podstatetest.T0)
	t1 := metav1.NewTime(podstatetest.T0.Add(time.Minute))
	now := podstatetest.T0.Add(time.Hour)
	cond := func(typ v1.PodConditionType, st v1.ConditionStatus, at metav1.Time) v1.PodCondition {
		return v1.PodCondition{Type: typ, Status: st, LastTransitionTime: at}
	}
	notGated := v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: t0, Reason: ReasonReadinessGatesNotReady,
		Message: `corresponding condition of pod readiness gate "example.com/gate" does not exist.`}
	// computed is what the agent computed: running, containers ready.
	computed := func(conds ...v1.PodCondition) *v1.PodStatus {
		return &v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.1", QOSClass: v1.PodQOSBestEffort,
			ContainerStatuses: []v1.ContainerStatus{{Name: "app", Ready: true}},
			Conditions:        conds}
	}
	for _, tc := range []struct {
		name   string
		gates  bool
		latest *v1.PodStatus
		status *v1.PodStatus
		want   *v1.PodStatus
	}{
		{
			name: "owned from the agent, the rest from the latest",
			latest: &v1.PodStatus{
				Phase: v1.PodPending, PodIP: "10.0.0.9", NominatedNodeName: "n2", ObservedGeneration: 3,
				ResourceClaimStatuses: []v1.PodResourceClaimStatus{{Name: "gpu"}},
				Conditions: []v1.PodCondition{
					cond(v1.PodScheduled, v1.ConditionTrue, t1), cond(v1.ContainersReady, v1.ConditionFalse, t0),
					cond(v1.DisruptionTarget, v1.ConditionTrue, t1), cond(v1.PodResizePending, v1.ConditionTrue, t1),
				},
			},
			status: computed(cond(v1.ContainersReady, v1.ConditionTrue, t1), cond(v1.PodReady, v1.ConditionTrue, t1),
				// A stale copy of another writer's condition: dropped.
				cond("example.com/stale", v1.ConditionTrue, t0)),
			want: &v1.PodStatus{
				Phase: v1.PodRunning, PodIP: "10.0.0.1", QOSClass: v1.PodQOSBestEffort, NominatedNodeName: "n2", ObservedGeneration: 3,
				ResourceClaimStatuses: []v1.PodResourceClaimStatus{{Name: "gpu"}},
				ContainerStatuses:     []v1.ContainerStatus{{Name: "app", Ready: true}},
				Conditions: []v1.PodCondition{
					cond(v1.PodReady, v1.ConditionTrue, t1), cond(v1.ContainersReady, v1.ConditionTrue, t1), cond(v1.PodScheduled, v1.ConditionTrue, t1),
					cond(v1.DisruptionTarget, v1.ConditionTrue, t1), cond(v1.PodResizePending, v1.ConditionTrue, t1),
				},
			},
		},
		{
			name:   "gate set meanwhile makes Ready true, transition now",
			gates:  true,
			latest: &v1.PodStatus{Conditions: []v1.PodCondition{cond(gate, v1.ConditionTrue, t1), notGated}},
			status: computed(cond(v1.ContainersReady, v1.ConditionTrue, t0), notGated),
			want: computedWith(computed(), cond(v1.PodReady, v1.ConditionTrue, metav1.NewTime(now)),
				cond(v1.ContainersReady, v1.ConditionTrue, t0), cond(gate, v1.ConditionTrue, t1)),
		},
		{
			name:  "gate set meanwhile, Ready true in the API already: its transition kept",
			gates: true,
			latest: &v1.PodStatus{Conditions: []v1.PodCondition{cond(gate, v1.ConditionTrue, t1),
				cond(v1.PodReady, v1.ConditionTrue, t1)}},
			status: computed(cond(v1.ContainersReady, v1.ConditionTrue, t0), notGated),
			want: computedWith(computed(), cond(v1.PodReady, v1.ConditionTrue, t1),
				cond(v1.ContainersReady, v1.ConditionTrue, t0), cond(gate, v1.ConditionTrue, t1)),
		},
		{
			name:   "gate turned False meanwhile makes Ready false",
			gates:  true,
			latest: &v1.PodStatus{Conditions: []v1.PodCondition{cond(gate, v1.ConditionFalse, t1)}},
			status: computed(cond(v1.ContainersReady, v1.ConditionTrue, t0), cond(v1.PodReady, v1.ConditionTrue, t0), cond(gate, v1.ConditionTrue, t0)),
			want: computedWith(computed(), v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: metav1.NewTime(now),
				Reason: ReasonReadinessGatesNotReady, Message: `the status of pod readiness gate "example.com/gate" is not "True", but False`},
				cond(v1.ContainersReady, v1.ConditionTrue, t0), cond(gate, v1.ConditionFalse, t1)),
		},
		{
			name:   "containers not ready: Ready left as computed",
			gates:  true,
			latest: &v1.PodStatus{Conditions: []v1.PodCondition{cond(gate, v1.ConditionTrue, t1)}},
			status: computed(cond(v1.ContainersReady, v1.ConditionFalse, t0), cond(v1.PodReady, v1.ConditionFalse, t0)),
			want: computedWith(computed(), cond(v1.PodReady, v1.ConditionFalse, t0),
				cond(v1.ContainersReady, v1.ConditionFalse, t0), cond(gate, v1.ConditionTrue, t1)),
		},
		{
			name:   "terminal phase is never ready",
			latest: &v1.PodStatus{Phase: v1.PodSucceeded, Conditions: []v1.PodCondition{cond(v1.PodReady, v1.ConditionTrue, t0)}},
			status: computedWith(&v1.PodStatus{Phase: v1.PodSucceeded}, cond(v1.ContainersReady, v1.ConditionTrue, t0), cond(v1.PodReady, v1.ConditionTrue, t0)),
			want: computedWith(&v1.PodStatus{Phase: v1.PodSucceeded},
				v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: metav1.NewTime(now)},
				v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: metav1.NewTime(now)}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := podstatetest.Pod()
			if tc.gates {
				pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: gate}}
			}
			latest, status := tc.latest.DeepCopy(), tc.status.DeepCopy()
			got := Merge(pod, tc.latest, tc.status, now)
			if !apiequality.Semantic.DeepEqual(tc.want, got) {
				t.Errorf("Merge (-want +got):\n%s", diff.Diff(tc.want, got))
			}
			if !apiequality.Semantic.DeepEqual(latest, tc.latest) {
				t.Errorf("Merge changed latest (-before +after):\n%s", diff.Diff(latest, tc.latest))
			}
			if !apiequality.Semantic.DeepEqual(status, tc.status) {
				t.Errorf("Merge changed status (-before +after):\n%s", diff.Diff(status, tc.status))
			}
		})
	}
}

// computedWith returns s with those conditions.
func computedWith(s *v1.PodStatus, conds ...v1.PodCondition) *v1.PodStatus {
	s.Conditions = conds
	return s
}

// A normalized status is what the API server returns of it: its times
// survive a round trip through JSON unchanged, so a status just sent
// equals the API's copy and is not sent again.
func TestNormalizeIsWhatTheAPIKeeps(t *testing.T) {
	ns := metav1.NewTime(time.Date(2026, 12, 5, 18, 13, 2, 786254123, time.UTC))
	terminated := v1.ContainerState{Terminated: &v1.ContainerStateTerminated{StartedAt: ns, FinishedAt: ns, Reason: "Completed"}}
	st := v1.PodStatus{
		StartTime:                  &ns,
		Conditions:                 []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: ns, LastProbeTime: ns}},
		InitContainerStatuses:      []v1.ContainerStatus{{Name: "init", State: terminated}},
		ContainerStatuses:          []v1.ContainerStatus{{Name: "app", State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: ns}}, LastTerminationState: terminated}},
		EphemeralContainerStatuses: []v1.ContainerStatus{{Name: "debug", State: terminated}},
	}
	normalize(&st)
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	var back v1.PodStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(&st, &back) {
		t.Errorf("normalized status changes through JSON:\n%+v\n%+v", st, back)
	}
	if got := st.StartTime.Time; got.Nanosecond() != 0 || got.Unix() != ns.Unix() {
		t.Errorf("start time %v, want %v truncated to the second", got, ns)
	}
}
