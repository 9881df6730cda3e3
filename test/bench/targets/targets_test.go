package targets

import (
	"testing"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/stats"
)

func lat(p50, p99 float64) result.Workload {
	return result.Workload{Summary: stats.Summary{Count: 40, P50Ms: p50, P99Ms: p99}}
}

// good is a run of ours that meets every target against kubelet and floor.
func fixtures() (ours, kubelet, floor *result.Result) {
	ours = &result.Result{Name: "ours", Workloads: map[string]result.Workload{
		result.OneRunning:           lat(60, 100),
		result.OneTerminated:        lat(100, 140),
		result.ConcurrentRunning:    lat(600, 1000),
		result.ConcurrentTerminated: lat(620, 1100),
		result.FewPodsRunning:       lat(60, 100),
		result.ManyPodsRunning:      lat(70, 140),
	}, Idle: &result.Idle{Pods: 108, RSSMB: 40, CPUPercent: 0.9}}
	kubelet = &result.Result{Name: "kubelet", Workloads: map[string]result.Workload{
		result.OneRunning:           lat(100, 440),
		result.OneTerminated:        lat(1000, 1040),
		result.ConcurrentRunning:    lat(1500, 3500),
		result.ConcurrentTerminated: lat(2000, 3600),
	}, Idle: &result.Idle{Pods: 108, RSSMB: 131, CPUPercent: 4.8}}
	floor = &result.Result{Name: "floor", Workloads: map[string]result.Workload{
		result.OneRunning:        lat(54, 62),
		result.ConcurrentRunning: lat(522, 944),
	}}
	return ours, kubelet, floor
}

func byName(ts []Target) map[string]Target {
	m := map[string]Target{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(ours, kubelet, floor **result.Result)
		wantAll bool
		// failed lists the targets expected not met; unmeasured those
		// expected not measured.
		failed, unmeasured []string
	}{
		{name: "all met", mutate: func(o, k, f **result.Result) {}, wantAll: true},
		{
			name: "slow to Running one at a time",
			mutate: func(o, k, f **result.Result) {
				(*o).Workloads[result.OneRunning] = lat(71, 151)
			},
			failed: []string{"one_running.p50 <= 1.3 x floor one_running.p50", "one_running.p99 <= 150 ms"},
		},
		{
			name: "exactly at the limit is met",
			mutate: func(o, k, f **result.Result) {
				(*o).Workloads[result.OneTerminated] = lat(150, 150)
				(*k).Workloads[result.OneTerminated] = lat(900, 900)
			},
			wantAll: true,
		},
		{
			name: "not 6x faster than the kubelet",
			mutate: func(o, k, f **result.Result) {
				(*k).Workloads[result.OneTerminated] = lat(500, 600)
			},
			failed: []string{"one_terminated.p50 <= kubelet one_terminated.p50 / 6"},
		},
		{
			name: "idle too heavy",
			mutate: func(o, k, f **result.Result) {
				(*o).Idle = &result.Idle{RSSMB: 50, CPUPercent: 1}
			},
			failed: []string{"idle.rss_mb <= kubelet idle.rss_mb / 3", "idle.cpu_percent <= kubelet idle.cpu_percent / 5"},
		},
		{
			name: "many pods degrade",
			mutate: func(o, k, f **result.Result) {
				(*o).Workloads[result.ManyPodsRunning] = lat(70, 151)
			},
			failed: []string{"many_pods_running.p99 <= 1.5 x few_pods_running.p99"},
		},
		{
			name:   "no floor file",
			mutate: func(o, k, f **result.Result) { *f = nil },
			unmeasured: []string{
				"one_running.p50 <= 1.3 x floor one_running.p50",
				"concurrent_running.p50 <= 1.2 x floor concurrent_running.p50",
				"concurrent_running.p99 <= 1.2 x floor concurrent_running.p99",
				"concurrent_terminated.p50 <= 1.2 x floor concurrent_running.p50",
				"concurrent_terminated.p99 <= 1.2 x floor concurrent_running.p99",
			},
		},
		{
			name: "no kubelet file and a workload missing in ours",
			mutate: func(o, k, f **result.Result) {
				*k = nil
				delete((*o).Workloads, result.ManyPodsRunning)
			},
			unmeasured: []string{
				"one_terminated.p50 <= kubelet one_terminated.p50 / 6",
				"idle.rss_mb <= kubelet idle.rss_mb / 3",
				"idle.cpu_percent <= kubelet idle.cpu_percent / 5",
				"many_pods_running.p99 <= 1.5 x few_pods_running.p99",
			},
		},
		{
			name: "nothing at all",
			mutate: func(o, k, f **result.Result) {
				*o, *k, *f = nil, nil, nil
			},
			unmeasured: allNames(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, k, f := fixtures()
			tc.mutate(&o, &k, &f)
			ts, all := Check(Inputs{Ours: o, Kubelet: k, Floor: f})
			if len(ts) != len(goals) {
				t.Fatalf("got %d targets, want %d", len(ts), len(goals))
			}
			if all != tc.wantAll {
				t.Errorf("all met = %v, want %v", all, tc.wantAll)
			}
			m := byName(ts)
			want := map[string]string{}
			for _, n := range tc.failed {
				want[n] = "failed"
			}
			for _, n := range tc.unmeasured {
				want[n] = "unmeasured"
			}
			for n, tg := range m {
				got := "met"
				switch {
				case !tg.Measured:
					got = "unmeasured"
				case !tg.Met:
					got = "failed"
				}
				w := want[n]
				if w == "" {
					w = "met"
				}
				if got != w {
					t.Errorf("%s: %s (%+v), want %s", n, got, tg, w)
				}
			}
		})
	}
}

func allNames() []string {
	var n []string
	for _, g := range goals {
		n = append(n, g.name)
	}
	return n
}

func TestCheckLimits(t *testing.T) {
	o, k, f := fixtures()
	m := byName(func() []Target { ts, _ := Check(Inputs{o, k, f}); return ts }())
	for name, want := range map[string][2]float64{
		"one_running.p50 <= 1.3 x floor one_running.p50":                  {60, 70.2},
		"one_terminated.p50 <= kubelet one_terminated.p50 / 6":            {100, 166.7},
		"concurrent_terminated.p99 <= 1.2 x floor concurrent_running.p99": {1100, 1132.8},
		"idle.rss_mb <= kubelet idle.rss_mb / 3":                          {40, 43.7},
		"many_pods_running.p99 <= 1.5 x few_pods_running.p99":             {140, 150},
	} {
		if got := m[name]; got.Value != want[0] || got.Limit != want[1] {
			t.Errorf("%s: value %v limit %v, want %v and %v", name, got.Value, got.Limit, want[0], want[1])
		}
	}
}

func TestComputeRatios(t *testing.T) {
	o, k, f := fixtures()
	r := ComputeRatios(Inputs{o, k, f})
	for key, want := range map[string]float64{
		"one_running.p50":           1.111, // 60 / 54
		"one_terminated.p50":        1.852, // against the floor's Running
		"concurrent_terminated.p99": 1.165, // 1100 / 944
	} {
		if got := r.OursFloor[key]; got != want {
			t.Errorf("ours/floor %s = %v, want %v", key, got, want)
		}
	}
	if _, ok := r.OursFloor["many_pods_running.p50"]; ok {
		t.Error("ours/floor has many_pods_running, which the floor does not measure")
	}
	for key, want := range map[string]float64{
		"one_terminated.p50": 0.1,
		"idle.rss_mb":        0.305,
		"idle.cpu_percent":   0.188,
	} {
		if got := r.OursKubelet[key]; got != want {
			t.Errorf("ours/kubelet %s = %v, want %v", key, got, want)
		}
	}
	if empty := ComputeRatios(Inputs{}); len(empty.OursFloor)+len(empty.OursKubelet) != 0 {
		t.Errorf("ratios without inputs = %+v, want none", empty)
	}
}
