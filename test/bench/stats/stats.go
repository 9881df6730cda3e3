// Package stats summarises latency samples: percentiles, mean and maximum.
// It is pure: no clock, no I/O.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary is the digest of one workload's latencies, in milliseconds.
type Summary struct {
	// Count is the number of samples.
	Count int `json:"count"`
	// P50Ms and P99Ms are nearest-rank percentiles: the smallest sample
	// with at least that share of samples at or below it. With 40 samples
	// p99 is the maximum: a conservative reading on purpose.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// MeanMs is the arithmetic mean.
	MeanMs float64 `json:"mean_ms"`
	// MaxMs is the largest sample.
	MaxMs float64 `json:"max_ms"`
}

// Summarize digests samples; an empty slice gives a zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	ms := make([]float64, len(samples))
	var sum float64
	for i, d := range samples {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Summary{
		Count:  len(ms),
		P50Ms:  round(Percentile(ms, 50)),
		P99Ms:  round(Percentile(ms, 99)),
		MeanMs: round(sum / float64(len(ms))),
		MaxMs:  round(ms[len(ms)-1]),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, which must be sorted ascending and not empty.
func Percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// round keeps a tenth of a millisecond: finer digits are noise here and
// only clutter the JSON.
func round(ms float64) float64 { return math.Round(ms*10) / 10 }
