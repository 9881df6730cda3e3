package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCPUSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		{"plain comm", "4242 (ephemeral-agent) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 12 0 100 2000000000 20000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", 18.01},
		{"comm with spaces and parentheses", "4242 (a) b (c d)) R 1 4242 4242 0 -1 4194560 5000 0 0 0 250 50 7 9 20 0 12 0 100 2000000000 20000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "4242"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "4242", "stat"), []byte(tc.stat), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := cpuSeconds(root, 4242)
			if err != nil {
				t.Fatal(err)
			}
			// utime+stime only: the children's cutime and cstime stay out.
			if got != tc.want {
				t.Errorf("cpuSeconds = %g, want %g", got, tc.want)
			}
		})
	}
	if _, err := cpuSeconds(t.TempDir(), 4242); err == nil {
		t.Error("cpuSeconds of a missing process: no error")
	}
}

func TestWorkloadCPU(t *testing.T) {
	for _, tc := range []struct {
		seconds           float64
		requests          int
		wantTotal, wantMs float64
	}{
		{1.23, 40, 1.23, 30.8},
		{0.004, 40, 0, 0.1},
		{0, 100, 0, 0},
		{2, 0, 2, 0},
	} {
		total, ms := workloadCPU(tc.seconds, tc.requests)
		if total != tc.wantTotal || ms != tc.wantMs {
			t.Errorf("workloadCPU(%g, %d) = %g, %g; want %g, %g", tc.seconds, tc.requests, total, ms, tc.wantTotal, tc.wantMs)
		}
	}
}
