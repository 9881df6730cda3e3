package stats

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	forty := make([]float64, 40)
	for i := range forty {
		forty[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"one sample", []float64{7}, 50, 7},
		{"one sample p99", []float64{7}, 99, 7},
		{"two samples p50 is the lower", []float64{1, 2}, 50, 1},
		{"forty p50", forty, 50, 20},
		{"forty p99 is the max", forty, 99, 40},
		{"hundred p99", seq(100), 99, 99},
		{"hundred p50", seq(100), 50, 50},
		{"p100", seq(10), 100, 10},
		{"tiny p", seq(10), 0.01, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i + 1)
	}
	return s
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{"empty", nil, Summary{}},
		{"unsorted", []time.Duration{30 * ms, 10 * ms, 20 * ms}, Summary{Count: 3, P50Ms: 20, P99Ms: 30, MeanMs: 20, MaxMs: 30}},
		{"sub-millisecond rounding", []time.Duration{1234567 * time.Nanosecond}, Summary{Count: 1, P50Ms: 1.2, P99Ms: 1.2, MeanMs: 1.2, MaxMs: 1.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.samples); got != tc.want {
				t.Errorf("Summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}
