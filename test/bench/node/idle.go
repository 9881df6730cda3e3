package node

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
)

// sampleEvery is how often VmRSS is read during the idle window.
const sampleEvery = 5 * time.Second

// processExists checks that pid is a live process before a long run needs it.
func processExists(pid int) error {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if _, err := p.Stat(); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	return nil
}

// measureIdle waits settle, then reads pid's CPU time at the start and end of
// window and its VmRSS every sampleEvery.
func measureIdle(ctx context.Context, pid, pods int, settle, window time.Duration) (*result.Idle, error) {
	logger := klog.FromContext(ctx)
	logger.Info("Letting the node settle", "pods", pods, "settle", settle)
	if err := sleep(ctx, settle); err != nil {
		return nil, err
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	cpu := func() (float64, error) { return cpuSeconds(procfs.DefaultMountPoint, pid) }
	var rss, anon []float64
	sampleRSS := func() error {
		st, err := p.NewStatus()
		if err != nil {
			return fmt.Errorf("status of process %d: %w", pid, err)
		}
		rss = append(rss, float64(st.VmRSS)/(1<<20))
		anon = append(anon, float64(st.RssAnon)/(1<<20))
		return nil
	}
	logger.Info("Measuring idle cost", "pid", pid, "window", window)
	start := time.Now()
	c0, err := cpu()
	if err != nil {
		return nil, err
	}
	for {
		if err := sampleRSS(); err != nil {
			return nil, err
		}
		left := window - time.Since(start)
		if left <= 0 {
			break
		}
		if err := sleep(ctx, min(sampleEvery, left)); err != nil {
			return nil, err
		}
	}
	c1, err := cpu()
	if err != nil {
		return nil, err
	}
	return idleFigures(pods, rss, anon, c1-c0, time.Since(start)), nil
}

// idleFigures turns samples into the reported figures: mean and largest
// RSS, mean anonymous RSS, and CPU seconds used over the elapsed wall time
// as % of one core.
func idleFigures(pods int, rssMB, anonMB []float64, cpuSeconds float64, elapsed time.Duration) *result.Idle {
	out := &result.Idle{Pods: pods, WindowS: math.Round(elapsed.Seconds()*10) / 10}
	for _, r := range rssMB {
		out.RSSMaxMB = max(out.RSSMaxMB, r)
	}
	out.RSSMB = mean(rssMB)
	out.RSSAnonMB = mean(anonMB)
	out.RSSMaxMB = math.Round(out.RSSMaxMB*10) / 10
	if elapsed > 0 {
		out.CPUPercent = math.Round(cpuSeconds/elapsed.Seconds()*100*100) / 100
	}
	return out
}

// mean is the mean of samples rounded to 0.1; 0 without samples.
func mean(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range samples {
		sum += s
	}
	return math.Round(sum/float64(len(samples))*10) / 10
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
