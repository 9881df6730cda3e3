package targetcheck

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
)

func TestPreflight(t *testing.T) {
	for _, tc := range []struct {
		name          string
		result        *Result
		wantCondition v1.ConditionStatus // "": none
		wantBlocked   bool
		// wantMetric is the result series set to 1; "": no series at all.
		wantMetric Outcome
	}{
		{name: "before a result"},
		{name: "shared", result: &Result{Outcome: Shared, Reason: ReasonShared, Message: "shared"}, wantCondition: v1.ConditionTrue, wantMetric: Shared},
		{name: "mismatch", result: &Result{Outcome: Mismatch, Reason: ReasonMismatch, Message: "not shared"}, wantCondition: v1.ConditionFalse, wantBlocked: true, wantMetric: Mismatch},
		{name: "error", result: &Result{Outcome: Error, Reason: ReasonPreflightError, Message: "could not run"}, wantCondition: v1.ConditionUnknown, wantMetric: Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			p := NewPreflight(reg)
			if tc.result != nil {
				p.Set(*tc.result)
			}
			cs := p.NodeConditions()
			switch {
			case tc.wantCondition == "" && len(cs) != 0:
				t.Errorf("conditions = %+v, want none", cs)
			case tc.wantCondition != "" && (len(cs) != 1 || cs[0].Type != ConditionType || cs[0].Status != tc.wantCondition ||
				cs[0].Reason != tc.result.Reason || cs[0].Message != tc.result.Message):
				t.Errorf("conditions = %+v, want one %s %s", cs, ConditionType, tc.wantCondition)
			}
			err := p.TargetSharing()
			if (err != nil) != tc.wantBlocked || (err != nil && err.Error() != tc.result.Message) {
				t.Errorf("TargetSharing = %v, want blocked %v with the result's message", err, tc.wantBlocked)
			}
			n, err := testutil.GatherAndCount(reg, "ephemeral_agent_target_preflight_result")
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantMetric == "" {
				if n != 0 {
					t.Errorf("%d metric series before a result, want none", n)
				}
				return
			}
			for _, o := range Outcomes {
				want := 0.0
				if o == tc.wantMetric {
					want = 1
				}
				if got := testutil.ToFloat64(p.result.WithLabelValues(string(o))); got != want {
					t.Errorf("ephemeral_agent_target_preflight_result{result=%q} = %v, want %v", o, got, want)
				}
			}
		})
	}
}

func TestNilPreflightBlocksNothing(t *testing.T) {
	var p *Preflight
	if err := p.TargetSharing(); err != nil {
		t.Errorf("TargetSharing of a nil Preflight = %v", err)
	}
	if cs := p.NodeConditions(); len(cs) != 0 {
		t.Errorf("NodeConditions of a nil Preflight = %v", cs)
	}
}
