package stats

import (
	"testing"
	"time"
)

func TestNextCPURecord(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rate := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name     string
		prev     *cpuRecord
		cur      cpuSample
		want     *uint64
		wantKept cpuSample // the sample the cache keeps
	}{
		{"first sample: no rate yet", nil, cpuSample{t0, 100}, nil, cpuSample{t0, 100}},
		{"half a core over 2s", &cpuRecord{sample: cpuSample{t0, 0}},
			cpuSample{t0.Add(2 * time.Second), uint64(time.Second)}, rate(5e8), cpuSample{t0.Add(2 * time.Second), uint64(time.Second)}},
		{"too close: the previous rate, the older sample kept", &cpuRecord{sample: cpuSample{t0, 0}, rate: rate(7)},
			cpuSample{t0.Add(100 * time.Millisecond), 50}, rate(7), cpuSample{t0, 0}},
		{"counter went back (restart): start over", &cpuRecord{sample: cpuSample{t0, 500}, rate: rate(7)},
			cpuSample{t0.Add(5 * time.Second), 10}, nil, cpuSample{t0.Add(5 * time.Second), 10}},
		{"same timestamp: start over", &cpuRecord{sample: cpuSample{t0, 5}},
			cpuSample{t0, 10}, nil, cpuSample{t0, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, got := nextCPURecord(tc.prev, tc.cur, time.Second)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("rate = %v, want %v", deref(got), deref(tc.want))
			}
			if next.sample != tc.wantKept {
				t.Errorf("kept %+v, want %+v", next.sample, tc.wantKept)
			}
		})
	}
}

func TestCPUCacheForgets(t *testing.T) {
	c := newCPUCache(time.Second)
	t0 := time.Unix(1000, 0)
	c.rate("a", cpuSample{t0, 0})
	c.rate("b", cpuSample{t0, 0})
	c.keep(map[string]bool{"a": true})
	if got := c.rate("b", cpuSample{t0.Add(time.Minute), 60}); got != nil {
		t.Errorf("a forgotten key still had its sample: rate %d", *got)
	}
	if got := c.rate("a", cpuSample{t0.Add(time.Minute), uint64(time.Minute)}); got == nil || *got != 1e9 {
		t.Errorf("rate of a kept key = %v, want one core", got)
	}
}
