package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func runtimeStatus(runtimeReady, networkReady bool) *runtimeapi.RuntimeStatus {
	s := &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: runtimeReady},
		{Type: runtimeapi.NetworkReady, Status: networkReady},
	}}
	if !networkReady {
		s.Conditions[1].Reason = "NetworkPluginNotReady"
		s.Conditions[1].Message = "cni plugin not initialized"
	}
	return s
}

func TestDesiredReadyCondition(t *testing.T) {
	for _, tc := range []struct {
		name        string
		health      RuntimeHealth
		wantStatus  v1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{"ready", RuntimeHealth{Status: runtimeStatus(true, true)}, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"},
		{"runtime unreachable", RuntimeHealth{Err: errors.New("connection refused")}, v1.ConditionFalse, "KubeletNotReady", "container runtime is down: connection refused"},
		{"not observed yet", RuntimeHealth{}, v1.ConditionFalse, "KubeletNotReady", "container runtime status check may not have completed yet"},
		{"network not ready", RuntimeHealth{Status: runtimeStatus(true, false)}, v1.ConditionFalse, "KubeletNotReady",
			"container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized"},
		{"runtime not ready", RuntimeHealth{Status: runtimeStatus(false, true)}, v1.ConditionFalse, "KubeletNotReady", "container runtime not ready: RuntimeReady=false"},
		{"conditions missing", RuntimeHealth{Status: &runtimeapi.RuntimeStatus{}}, v1.ConditionFalse, "KubeletNotReady", "RuntimeReady is not reported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := findCondition(desiredConditions(tc.health, Pressure{}), v1.NodeReady)
			if got == nil {
				t.Fatal("no Ready condition")
			}
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason || !strings.Contains(got.Message, tc.wantMessage) {
				t.Errorf("Ready = %s/%s/%q, want %s/%s/containing %q", got.Status, got.Reason, got.Message, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
			if tc.health.Ready() != (tc.wantStatus == v1.ConditionTrue) {
				t.Errorf("Ready() = %v, inconsistent with the condition", tc.health.Ready())
			}
		})
	}
}

func TestMergeConditionsKeepsTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	old := []v1.NodeCondition{
		{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: t0, LastHeartbeatTime: t0},
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, LastTransitionTime: t0},
		{Type: "NetworkUnavailable", Status: v1.ConditionFalse, LastTransitionTime: t0},
	}
	for _, tc := range []struct {
		name           string
		health         RuntimeHealth
		wantTransition metav1.Time
	}{
		{"unchanged status keeps the transition time", RuntimeHealth{Status: runtimeStatus(true, true)}, t0},
		{"flipped status moves it", RuntimeHealth{Err: errors.New("down")}, t1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeConditions(old, desiredConditions(tc.health, Pressure{}), t1)
			ready := findCondition(got, v1.NodeReady)
			if !ready.LastTransitionTime.Equal(&tc.wantTransition) {
				t.Errorf("Ready lastTransitionTime = %v, want %v", ready.LastTransitionTime, tc.wantTransition)
			}
			if !ready.LastHeartbeatTime.Equal(&t1) {
				t.Errorf("Ready lastHeartbeatTime = %v, want %v", ready.LastHeartbeatTime, t1)
			}
			if mp := findCondition(got, v1.NodeMemoryPressure); !mp.LastTransitionTime.Equal(&t0) {
				t.Errorf("MemoryPressure lastTransitionTime moved to %v", mp.LastTransitionTime)
			}
			if findCondition(got, "NetworkUnavailable") == nil {
				t.Error("a condition owned by another component was dropped")
			}
		})
	}
}

func TestConditionsChanged(t *testing.T) {
	ready := desiredConditions(RuntimeHealth{Status: runtimeStatus(true, true)}, Pressure{})
	down := desiredConditions(RuntimeHealth{Err: errors.New("down")}, Pressure{})
	reported := mergeConditions(nil, ready, metav1.Now())
	for _, tc := range []struct {
		name     string
		reported []v1.NodeCondition
		want     []v1.NodeCondition
		changed  bool
	}{
		{"nothing reported yet", nil, ready, true},
		{"same conditions, other timestamps", reported, ready, false},
		{"status flipped", reported, down, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := conditionsChanged(tc.reported, tc.want); got != tc.changed {
				t.Errorf("conditionsChanged = %v, want %v", got, tc.changed)
			}
		})
	}
}

func TestRuntimeError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health RuntimeHealth
		want   string // "" for no error
	}{
		{"ready", RuntimeHealth{Status: runtimeStatus(true, true)}, ""},
		// A node without CNI config is NotReady, but the agent is not broken.
		{"network not ready", RuntimeHealth{Status: runtimeStatus(true, false)}, ""},
		{"not observed yet", RuntimeHealth{}, ""},
		{"runtime unreachable", RuntimeHealth{Err: errors.New("connection refused")}, "container runtime is down: connection refused"},
		{"runtime not ready", RuntimeHealth{Status: runtimeStatus(false, true)}, "container runtime not ready: RuntimeReady=false"},
		{"runtime condition missing", RuntimeHealth{Status: &runtimeapi.RuntimeStatus{}}, "container runtime not ready: RuntimeReady is not reported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.health.RuntimeError()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("RuntimeError() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("RuntimeError() = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
