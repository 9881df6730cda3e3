package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/stats"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/targets"
)

func TestPrintLastLineIsJSON(t *testing.T) {
	floor := &result.Result{Name: "floor", Workloads: map[string]result.Workload{
		result.OneRunning: {Summary: stats.Summary{Count: 40, P50Ms: 54, P99Ms: 62}, Pods: 40, InFlight: 1},
	}}
	for _, tc := range []struct {
		name string
		in   targets.Inputs
	}{
		{"nothing", targets.Inputs{}},
		{"floor only", targets.Inputs{Floor: floor}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Print(&out, Build(tc.in)); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
				t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
			}
			for _, k := range []string{"ours", "kubelet", "floor", "ratios", "targets_met", "targets"} {
				if _, ok := got[k]; !ok {
					t.Errorf("JSON lacks key %q", k)
				}
			}
			if got["targets_met"] != false {
				t.Errorf("targets_met = %v with inputs missing, want false", got["targets_met"])
			}
			if !strings.Contains(out.String(), "not measured") {
				t.Errorf("no target reported as not measured:\n%s", out.String())
			}
		})
	}
}

func TestScaleNote(t *testing.T) {
	full := &result.Result{Name: "floor", Scale: 1}
	quick := &result.Result{Name: "ours", Scale: 0.2}
	if n := scaleNote(Summary{Ours: quick, Floor: full}); !strings.Contains(n, "ours 0.2, floor 1") {
		t.Errorf("note = %q, want both scales named", n)
	}
	if n := scaleNote(Summary{Ours: full, Floor: full}); n != "" {
		t.Errorf("note = %q for equal scales, want none", n)
	}
}
