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

func TestPrintAgentCPU(t *testing.T) {
	ours := &result.Result{Name: "ours", Workloads: map[string]result.Workload{
		result.OneRunning: {Summary: stats.Summary{Count: 40, P50Ms: 80, P99Ms: 120}, Pods: 40, InFlight: 1,
			AgentCPUS: 0.49, AgentCPUMsPerRequest: 12.3},
	}}
	kubelet := &result.Result{Name: "kubelet", Workloads: map[string]result.Workload{
		result.OneRunning: {Summary: stats.Summary{Count: 40, P50Ms: 100, P99Ms: 440}, Pods: 40, InFlight: 1},
	}}
	var out bytes.Buffer
	if err := Print(&out, Build(targets.Inputs{Ours: ours, Kubelet: kubelet})); err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, labels[result.OneRunning]) && strings.Contains(l, "(0.49 s)") {
			row = l
		}
	}
	// The kubelet measured without --pid: its cell is empty, not 0.
	if f := strings.Fields(row); len(f) < 4 || f[len(f)-4] != "12.3" || f[len(f)-1] != "-" {
		t.Errorf("CPU row = %q, want ours 12.3 (0.49 s) and kubelet -:\n%s", row, out.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	var got struct {
		Ours, Kubelet struct {
			Workloads map[string]map[string]any `json:"workloads"`
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not JSON: %v", err)
	}
	if w := got.Ours.Workloads[result.OneRunning]; w["agent_cpu_s"] != 0.49 || w["agent_cpu_ms_per_request"] != 12.3 {
		t.Errorf("ours one_running in JSON = %v, want agent_cpu_s 0.49 and agent_cpu_ms_per_request 12.3", w)
	}
	if w := got.Kubelet.Workloads[result.OneRunning]; w["agent_cpu_s"] != nil {
		t.Errorf("kubelet one_running in JSON = %v, want no agent_cpu_s", w)
	}

	// Without any CPU figure there is no CPU table.
	out.Reset()
	if err := Print(&out, Build(targets.Inputs{Kubelet: kubelet})); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "agent CPU") {
		t.Errorf("CPU table printed without CPU figures:\n%s", out.String())
	}
}
