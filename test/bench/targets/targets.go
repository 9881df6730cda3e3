// Package targets checks the figures of a benchmark run against the goals of
// issue 13 and computes the ratios the report prints. It is pure: results in,
// verdicts out.
package targets

import (
	"fmt"
	"math"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
)

// Target is one goal: met when Value ≤ Limit. Every goal is phrased that way
// ("≥ 6× faster than the kubelet" becomes "≤ the kubelet's p50 / 6").
type Target struct {
	// Name says what is checked, e.g. "one_running.p50 <= 1.3 x floor p50".
	Name string `json:"name"`
	// Value is our figure; Limit the largest value that meets the goal.
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Unit is "ms", "MiB" or "%".
	Unit string `json:"unit"`
	// Measured is false when an input was missing; Met is then false too.
	Measured bool `json:"measured"`
	Met      bool `json:"met"`
}

// Inputs are the three results; any may be nil (not measured).
type Inputs struct {
	Ours, Kubelet, Floor *result.Result
}

// metric picks one figure out of a result, reporting whether it exists.
type metric func(*result.Result) (float64, bool)

func latency(workload, stat string) metric {
	return func(r *result.Result) (float64, bool) {
		w, ok := r.Latency(workload)
		if !ok {
			return 0, false
		}
		switch stat {
		case "p50":
			return w.P50Ms, true
		case "p99":
			return w.P99Ms, true
		}
		return 0, false
	}
}

func idle(stat string) metric {
	return func(r *result.Result) (float64, bool) {
		if r == nil || r.Idle == nil {
			return 0, false
		}
		switch stat {
		case "rss_mb":
			return r.Idle.RSSMB, true
		case "cpu_percent":
			return r.Idle.CPUPercent, true
		}
		return 0, false
	}
}

// constant is a fixed limit, always "measured".
func constant(v float64) metric { return func(*result.Result) (float64, bool) { return v, true } }

// goal is a target before evaluation: value of ours against factor × base.
type goal struct {
	name   string
	unit   string
	value  metric
	base   metric
	of     func(Inputs) *result.Result // whose figure base reads
	factor float64
}

func ours(in Inputs) *result.Result    { return in.Ours }
func kubelet(in Inputs) *result.Result { return in.Kubelet }
func floor(in Inputs) *result.Result   { return in.Floor }

// goals are issue 13's targets, in its order.
var goals = []goal{
	{"one_running.p50 <= 1.3 x floor one_running.p50", "ms", latency(result.OneRunning, "p50"), latency(result.OneRunning, "p50"), floor, 1.3},
	{"one_running.p99 <= 150 ms", "ms", latency(result.OneRunning, "p99"), constant(150), ours, 1},
	{"one_terminated.p50 <= 150 ms", "ms", latency(result.OneTerminated, "p50"), constant(150), ours, 1},
	{"one_terminated.p50 <= kubelet one_terminated.p50 / 6", "ms", latency(result.OneTerminated, "p50"), latency(result.OneTerminated, "p50"), kubelet, 1.0 / 6},
	{"concurrent_running.p50 <= 1.2 x floor concurrent_running.p50", "ms", latency(result.ConcurrentRunning, "p50"), latency(result.ConcurrentRunning, "p50"), floor, 1.2},
	{"concurrent_running.p99 <= 1.2 x floor concurrent_running.p99", "ms", latency(result.ConcurrentRunning, "p99"), latency(result.ConcurrentRunning, "p99"), floor, 1.2},
	{"concurrent_terminated.p50 <= 1.2 x floor concurrent_running.p50", "ms", latency(result.ConcurrentTerminated, "p50"), latency(result.ConcurrentRunning, "p50"), floor, 1.2},
	{"concurrent_terminated.p99 <= 1.2 x floor concurrent_running.p99", "ms", latency(result.ConcurrentTerminated, "p99"), latency(result.ConcurrentRunning, "p99"), floor, 1.2},
	{"idle.rss_mb <= kubelet idle.rss_mb / 3", "MiB", idle("rss_mb"), idle("rss_mb"), kubelet, 1.0 / 3},
	{"idle.cpu_percent <= kubelet idle.cpu_percent / 5", "%", idle("cpu_percent"), idle("cpu_percent"), kubelet, 1.0 / 5},
	{"many_pods_running.p99 <= 1.5 x few_pods_running.p99", "ms", latency(result.ManyPodsRunning, "p99"), latency(result.FewPodsRunning, "p99"), ours, 1.5},
}

// Check evaluates every target. The second value is true only when every
// target was measured and met.
func Check(in Inputs) ([]Target, bool) {
	all := true
	out := make([]Target, 0, len(goals))
	for _, g := range goals {
		t := Target{Name: g.name, Unit: g.unit}
		v, okV := g.value(in.Ours)
		b, okB := g.base(g.of(in))
		if okV && okB {
			t.Measured = true
			t.Value = round(v)
			t.Limit = round(b * g.factor)
			t.Met = v <= b*g.factor
		}
		all = all && t.Met
		out = append(out, t)
	}
	return out, all
}

// Ratios are ours divided by a baseline, keyed "workload.stat" (e.g.
// "one_running.p50", "idle.rss_mb"); figures missing on either side are
// left out.
type Ratios struct {
	OursFloor   map[string]float64 `json:"ours_floor"`
	OursKubelet map[string]float64 `json:"ours_kubelet"`
}

// floorBaseline is the floor's workload each of ours is compared with: the
// floor only starts containers, so both Terminated workloads meet its Running.
var floorBaseline = map[string]string{
	result.OneRunning:           result.OneRunning,
	result.OneTerminated:        result.OneRunning,
	result.ConcurrentRunning:    result.ConcurrentRunning,
	result.ConcurrentTerminated: result.ConcurrentRunning,
}

// ComputeRatios divides our figures by the floor's and the kubelet's.
func ComputeRatios(in Inputs) Ratios {
	r := Ratios{OursFloor: map[string]float64{}, OursKubelet: map[string]float64{}}
	for _, w := range result.Workloads {
		for _, stat := range []string{"p50", "p99"} {
			key := fmt.Sprintf("%s.%s", w, stat)
			v, ok := latency(w, stat)(in.Ours)
			if !ok {
				continue
			}
			if k, ok := latency(w, stat)(in.Kubelet); ok {
				putRatio(r.OursKubelet, key, v, k)
			}
			if fw, found := floorBaseline[w]; found {
				if f, ok := latency(fw, stat)(in.Floor); ok {
					putRatio(r.OursFloor, key, v, f)
				}
			}
		}
	}
	for _, stat := range []string{"rss_mb", "cpu_percent"} {
		v, ok := idle(stat)(in.Ours)
		k, okK := idle(stat)(in.Kubelet)
		if ok && okK {
			putRatio(r.OursKubelet, "idle."+stat, v, k)
		}
	}
	return r
}

func putRatio(m map[string]float64, key string, num, den float64) {
	if den > 0 {
		m[key] = math.Round(num/den*1000) / 1000
	}
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
