package prober

import (
	"slices"
	"testing"
)

func TestTally(t *testing.T) {
	tests := []struct {
		name             string
		success, failure int32
		results          []bool
		want             []bool // decided after each result
	}{
		{"one success decides", 1, 3, []bool{true}, []bool{true}},
		{"failures need a run of three", 1, 3, []bool{false, false, false, false}, []bool{false, false, true, true}},
		{"a success breaks the run", 1, 3, []bool{false, false, true, false, false, false}, []bool{false, false, true, false, false, true}},
		{"two successes in a row", 2, 1, []bool{true, false, true, true}, []bool{false, true, false, true}},
		{"zero thresholds mean one", 0, 0, []bool{false, true}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl tally
			var got []bool
			for _, r := range tt.results {
				got = append(got, tl.add(r, tt.success, tt.failure))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("decided = %v, want %v", got, tt.want)
			}
		})
	}
}
