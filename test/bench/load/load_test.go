package load

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name        string
		n, inFlight int
		failAt      int // -1: none
		wantErr     bool
	}{
		{"one at a time", 5, 1, -1, false},
		{"in flight", 20, 4, -1, false},
		{"more in flight than ops", 3, 10, -1, false},
		{"none", 0, 1, -1, false},
		{"error stops", 50, 2, 3, true},
		{"invalid in flight", 1, 0, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var running, peak, done atomic.Int32
			got, err := Run(context.Background(), tc.n, tc.inFlight, func(ctx context.Context, i int) (time.Duration, error) {
				r := running.Add(1)
				defer running.Add(-1)
				for {
					p := peak.Load()
					if r <= p || peak.CompareAndSwap(p, r) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				done.Add(1)
				if i == tc.failAt {
					return 0, errors.New("boom")
				}
				return time.Duration(i), nil
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if int(peak.Load()) > max(tc.inFlight, 0) {
				t.Errorf("peak %d in flight, want at most %d", peak.Load(), tc.inFlight)
			}
			if tc.wantErr {
				if tc.failAt >= 0 && int(done.Load()) == tc.n {
					t.Errorf("all %d ops ran after an error", tc.n)
				}
				return
			}
			if len(got) != tc.n {
				t.Fatalf("got %d latencies, want %d", len(got), tc.n)
			}
			for i, d := range got {
				if d != time.Duration(i) {
					t.Errorf("latency %d = %v, want in index order", i, d)
				}
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, 10, 1, func(ctx context.Context, i int) (time.Duration, error) {
		return 0, ctx.Err()
	}); err == nil {
		t.Error("Run with a cancelled context succeeded")
	}
}
