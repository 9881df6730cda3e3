//go:build e2e

package e2enode

// The fault tests (TestChaos*) run at two scales: the short one in make
// test (every e2e run), the full one in make chaos (EA_CHAOS_SCALE=full,
// hack/chaos.sh), whose figures go to docs/reliability.md. Each test
// records its figures with recordFigure; hack/chaos.sh prints them as one
// JSON line at the end.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// chaosScale is how hard the fault tests push.
type chaosScale struct {
	// Name is "full" or "short".
	Name string
	// Pods and Ephemeral: ephemeral containers added across pods while
	// the agent is SIGKILLed Kills times and containerd restarted
	// RuntimeRestarts times.
	Pods, Ephemeral, Kills, RuntimeRestarts int
	// Outage is how long kube-apiserver is stopped.
	Outage time.Duration
	// ChurnCycles pods are created and deleted, ChurnParallel at a time.
	ChurnCycles, ChurnParallel int
	// DeleteRounds is how often each way of deleting a pod in the
	// middle of its debugger's creation is tried.
	DeleteRounds int
}

// chaosScales are the figures (full) and a version that keeps make
// test's e2e run within minutes (short).
var chaosScales = map[string]chaosScale{
	"full":  {Name: "full", Pods: 20, Ephemeral: 100, Kills: 20, RuntimeRestarts: 5, Outage: 60 * time.Second, ChurnCycles: 1000, ChurnParallel: 10, DeleteRounds: 5},
	"short": {Name: "short", Pods: 4, Ephemeral: 12, Kills: 3, RuntimeRestarts: 1, Outage: 15 * time.Second, ChurnCycles: 40, ChurnParallel: 5, DeleteRounds: 1},
}

// chaos returns the scale EA_CHAOS_SCALE asks for, short by default.
func chaos(t *testing.T) chaosScale {
	t.Helper()
	name := os.Getenv("EA_CHAOS_SCALE")
	if name == "" {
		name = "short"
	}
	s, ok := chaosScales[name]
	if !ok {
		t.Fatalf("EA_CHAOS_SCALE=%q: want full or short", name)
	}
	return s
}

// figures are the fault tests' results, written to EA_CHAOS_REPORT (when
// set) as one JSON object after each change, so a run cut short still
// reports what it measured.
var figures = struct {
	mu sync.Mutex
	m  map[string]any
}{m: map[string]any{}}

// recordFigure sets one figure of the report and logs it.
func recordFigure(t *testing.T, key string, value any) {
	t.Helper()
	t.Logf("figure %s = %v", key, value)
	figures.mu.Lock()
	defer figures.mu.Unlock()
	figures.m[key] = value
	path := os.Getenv("EA_CHAOS_REPORT")
	if path == "" {
		return
	}
	// encoding/json sorts map keys: the line reads the same every run.
	b, err := json.Marshal(maps.Clone(figures.m))
	if err != nil {
		t.Fatalf("encode figures: %v", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatalf("write figures: %v", err)
	}
}

// agentMetrics scrapes the agent's /metrics (as the cluster admin).
func agentMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := httpsClient(t, "admin").Get("https://127.0.0.1:" + testEnv.agentPort + "/metrics")
	if err != nil {
		t.Fatalf("scrape the agent's metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape the agent's metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the agent's metrics: %v", err)
	}
	return fams
}

// metricSum is the sum of a counter, gauge or untyped family's samples
// whose labels include every pair of labels ("k=v"), 0 when absent.
func metricSum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, m := range matchingSamples(fams, name, labels) {
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// metricPresent reports whether the family has a sample carrying every
// label pair ("k=v").
func metricPresent(fams map[string]*dto.MetricFamily, name string, labels ...string) bool {
	return len(matchingSamples(fams, name, labels)) > 0
}

// matchingSamples returns the family's samples whose labels include every
// pair of labels ("k=v").
func matchingSamples(fams map[string]*dto.MetricFamily, name string, labels []string) []*dto.Metric {
	var out []*dto.Metric
samples:
	for _, m := range fams[name].GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			if !found {
				continue samples
			}
		}
		out = append(out, m)
	}
	return out
}

// rssKB is the resident set size of process pid, in KiB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the agent's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// maxFigure keeps the largest value of a figure several tests measure,
// rounded to a tenth.
func maxFigure(t *testing.T, key string, value float64) {
	t.Helper()
	value = float64(int(value*10+0.5)) / 10
	figures.mu.Lock()
	old, ok := figures.m[key].(float64)
	figures.mu.Unlock()
	if ok && old >= value {
		t.Logf("figure %s: %v (kept the earlier %v)", key, value, old)
		return
	}
	recordFigure(t, key, value)
}
