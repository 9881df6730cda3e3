package kuberuntime

import (
	"fmt"
	"time"
)

// The kubelet's liveness thresholds for its sync loop and its PLEG.
const (
	// MinSyncLoopThreshold is the shortest time the sync loop may go
	// without progress while pods wait before /healthz fails; with a long
	// --sync-frequency it is twice that, as the kubelet's
	// SyncLoopHealthCheck.
	MinSyncLoopThreshold = 5 * time.Minute
	// RelistThreshold is how long the runtime may go without a completed
	// relist before /healthz fails, the kubelet's genericPlegRelistThreshold
	// (at least two relist periods, should --relist-period be longer).
	RelistThreshold = 3 * time.Minute
)

// healthClock is what the Workers remember for their health checks. The
// zero time means "not yet".
type healthClock struct {
	// started is when Run began: before it, nothing is expected of the
	// loop (the agent waits for its caches), as the kubelet's check passes
	// until its sync loop is first entered.
	started time.Time
	// progress is when a worker last took a pod from the queue or finished
	// syncing one.
	progress time.Time
	// relisted is when the last relist that completed began, as the
	// kubelet's PLEG stamps it.
	relisted time.Time
}

// syncLoopThreshold is the kubelet's rule: twice the resync period, at
// least MinSyncLoopThreshold.
func syncLoopThreshold(resync time.Duration) time.Duration {
	return max(2*resync, MinSyncLoopThreshold)
}

// relistThreshold is RelistThreshold, or two relist periods when that is
// longer, so a slow configured relist does not fail by itself.
func relistThreshold(period time.Duration) time.Duration {
	return max(2*period, RelistThreshold)
}

// syncLoopHealth decides the sync loop's health at now. The loop is stuck
// when pods wait in the queue (waiting > 0) and no worker took or finished
// a sync for longer than threshold: every worker hangs, or none runs. An
// idle loop is healthy however long nothing happened, and so is one busy
// with a long sync (a pod's grace period) while no other pod waits. It is
// pure.
func syncLoopHealth(h healthClock, waiting int, now time.Time, threshold time.Duration) error {
	if h.started.IsZero() || waiting == 0 {
		return nil
	}
	last := h.progress
	if last.Before(h.started) {
		last = h.started
	}
	if idle := now.Sub(last); idle > threshold {
		// The kubelet's words first, then what the agent knows more.
		return fmt.Errorf("sync Loop took longer than expected: no pod sync started or ended in %v while %d pods wait; threshold is %v", idle.Round(time.Second), waiting, threshold)
	}
	return nil
}

// relistHealth decides the relist's (the PLEG's) health at now, with the
// kubelet's messages: a relist must have completed within threshold, and
// the first within threshold of the start. It is pure.
func relistHealth(h healthClock, now time.Time, threshold time.Duration) error {
	if h.started.IsZero() {
		return nil
	}
	if h.relisted.IsZero() {
		if now.Sub(h.started) > threshold {
			return fmt.Errorf("pleg has yet to be successful")
		}
		return nil
	}
	if elapsed := now.Sub(h.relisted); elapsed > threshold {
		return fmt.Errorf("pleg was last seen active %v ago; threshold is %v", elapsed, threshold)
	}
	return nil
}

// SyncLoopHealthy returns why the sync loop is stuck, or nil: the
// "syncloop" check of /healthz.
func (w *Workers) SyncLoopHealthy() error {
	w.healthMu.Lock()
	h := w.health
	w.healthMu.Unlock()
	return syncLoopHealth(h, w.queue.Len(), w.clock.Now(), syncLoopThreshold(w.cfg.Resync))
}

// RelistHealthy returns why the relist is late, or nil: the "pleg" check
// of /healthz. Its threshold follows the relist period in force, which
// depends on whether runtime events are connected.
func (w *Workers) RelistHealthy() error {
	w.healthMu.Lock()
	h := w.health
	w.healthMu.Unlock()
	return relistHealth(h, w.clock.Now(), relistThreshold(w.relistPeriod()))
}

// markProgress records that a worker took or finished a sync.
func (w *Workers) markProgress() {
	now := w.clock.Now()
	w.healthMu.Lock()
	w.health.progress = now
	w.healthMu.Unlock()
}
