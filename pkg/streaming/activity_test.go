package streaming

import (
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) step(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// endings records onEnd's calls.
type endings struct {
	mu   sync.Mutex
	pods []types.UID
}

func (e *endings) onEnd(uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pods = append(e.pods, uid)
}

func (e *endings) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pods)
}

func TestActivity(t *testing.T) {
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	ends := &endings{}
	a := NewActivity(clock.now, ends.onEnd)

	check := func(what, id string, wantLast time.Time, wantActive bool) {
		t.Helper()
		if last, active := a.LastActivity(id); !last.Equal(wantLast) || active != wantActive {
			t.Errorf("%s: LastActivity(%s) = %v, %v; want %v, %v", what, id, last, active, wantLast, wantActive)
		}
	}
	check("never seen", "dbg-1", start, false)

	clock.step(time.Minute)
	end1 := a.Begin("pod-a", "dbg-1")
	now := clock.step(time.Minute)
	check("one session open", "dbg-1", now, true)
	end2 := a.Begin("pod-a", "dbg-1")
	clock.step(time.Minute)
	end1()
	check("one of two ended", "dbg-1", clock.now(), true)
	if ends.count() != 0 {
		t.Errorf("onEnd called with a session still open: %v", ends.pods)
	}
	lastEnd := clock.step(time.Minute)
	end2()
	end2() // idempotent
	end1()
	clock.step(time.Hour)
	check("both ended", "dbg-1", lastEnd, false)
	if len(ends.pods) != 1 || ends.pods[0] != "pod-a" {
		t.Errorf("onEnd calls = %v, want one for pod-a", ends.pods)
	}
	check("another container", "app-1", start, false)

	// A new session after an end is active again; Forget drops all of it.
	end3 := a.Begin("pod-a", "dbg-1")
	check("again", "dbg-1", clock.now(), true)
	a.Forget("dbg-1")
	check("forgotten", "dbg-1", start, false)
	end3()
	if ends.count() != 1 {
		t.Errorf("onEnd called for a forgotten container: %v", ends.pods)
	}
	check("forgotten, its session ended", "dbg-1", start, false)
}

// TestActivityForgetsOld: containers whose sessions ended long ago are
// forgotten, and then read as active no earlier than they were.
func TestActivityForgetsOld(t *testing.T) {
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	a := NewActivity(clock.now, nil)

	clock.step(time.Hour)
	a.Begin("pod-a", "old")()
	oldEnd := clock.now()
	clock.step(time.Hour)
	a.Begin("pod-b", "newer")()
	open := a.Begin("pod-c", "open")

	// The old one ended a minute less than activityRetention ago.
	clock.step(activityRetention - time.Hour - time.Minute)
	a.Begin("pod-d", "trigger")()

	a.mu.Lock()
	_, oldKept := a.containers["old"]
	_, newerKept := a.containers["newer"]
	_, openKept := a.containers["open"]
	n := len(a.containers)
	a.mu.Unlock()
	if !oldKept || !newerKept || !openKept || n != 4 {
		t.Fatalf("pruned too early: %d containers", n)
	}

	clock.step(2 * time.Hour)
	a.Begin("pod-d", "trigger")()
	a.mu.Lock()
	_, oldKept = a.containers["old"]
	_, newerKept = a.containers["newer"]
	_, openKept = a.containers["open"]
	a.mu.Unlock()
	if oldKept || newerKept || !openKept {
		t.Errorf("kept old %v newer %v open %v; want only the open one", oldKept, newerKept, openKept)
	}
	newerEnd := oldEnd.Add(time.Hour)
	if last, active := a.LastActivity("old"); !last.Equal(newerEnd) || active {
		t.Errorf("forgotten container: %v, %v; want the newest forgotten end %v", last, active, newerEnd)
	}
	if _, active := a.LastActivity("open"); !active {
		t.Error("a container with an open session was forgotten")
	}
	open()
}

func TestActivityNil(t *testing.T) {
	var a *Activity
	end := a.Begin("pod-a", "c1")
	end()
	a.Forget("c1")
	if last, active := a.LastActivity("c1"); !last.IsZero() || active {
		t.Errorf("nil LastActivity = %v, %v", last, active)
	}
}

// TestActivityConcurrent is for the race detector: sessions begin and end
// from many goroutines while others read and forget.
func TestActivityConcurrent(t *testing.T) {
	ends := &endings{}
	a := NewActivity(time.Now, ends.onEnd)
	ids := []string{"c1", "c2", "c3"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				id := ids[(i+j)%len(ids)]
				end := a.Begin(types.UID("pod-"+id), id)
				a.LastActivity(id)
				if j%50 == 0 {
					a.Forget(id)
				}
				end()
				end()
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if _, active := a.LastActivity(id); active {
			t.Errorf("%s still active after every session ended", id)
		}
	}
	if ends.count() == 0 {
		t.Error("onEnd never called")
	}
}
