package streaming

import (
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// activityRetention is how long Activity remembers a container whose
// sessions all ended; a container forgotten this way reads as active at
// the newest end forgotten (see LastActivity), never earlier than it was.
const activityRetention = 24 * time.Hour

// Activity tracks, per container ID, the exec and attach sessions open to
// it and when the last one ended: the idle clock of debug containers'
// idleTimeout. It is safe for concurrent use. A nil *Activity tracks
// nothing.
//
// Memory stays bounded: Forget drops a container, and containers with no
// open session are forgotten activityRetention after their last one ended.
type Activity struct {
	now   func() time.Time
	onEnd func(podUID types.UID)
	start time.Time

	mu         sync.Mutex
	containers map[string]*containerActivity
	// floor is the newest end time of the containers forgotten for age:
	// what LastActivity answers for them instead of the true, later
	// forgotten time, so that none looks idle for longer than it was.
	floor     time.Time
	lastPrune time.Time
}

// containerActivity is one container's sessions.
type containerActivity struct {
	podUID types.UID
	open   int
	// ended is when the last session ended; set whenever open is 0.
	ended time.Time
}

// NewActivity returns a tracker whose clock is now and whose memory starts
// now. onEnd, when not nil, is called, outside the tracker's locks, when a
// container's last open session ends, so that its pod's idle deadline can
// be computed anew.
func NewActivity(now func() time.Time, onEnd func(podUID types.UID)) *Activity {
	start := now()
	return &Activity{now: now, onEnd: onEnd, start: start, lastPrune: start, containers: map[string]*containerActivity{}}
}

// Begin records a session open to container containerID of pod podUID
// and returns the function that records its end; calling end again does
// nothing.
func (a *Activity) Begin(podUID types.UID, containerID string) (end func()) {
	if a == nil || containerID == "" {
		return func() {}
	}
	a.mu.Lock()
	now := a.now()
	a.pruneLocked(now)
	c := a.containers[containerID]
	if c == nil {
		c = &containerActivity{podUID: podUID}
		a.containers[containerID] = c
	}
	c.open++
	a.mu.Unlock()

	var ended atomic.Bool
	return func() {
		if ended.Swap(true) {
			return
		}
		a.mu.Lock()
		c.open--
		c.ended = a.now()
		// A container forgotten meanwhile is no one's concern any more.
		last := c.open == 0 && a.containers[containerID] == c
		a.mu.Unlock()
		if last && a.onEnd != nil {
			a.onEnd(c.podUID)
		}
	}
}

// LastActivity reports whether a session to container containerID is open
// (active, with last the current time) and otherwise when the last one
// ended. For a container with no session since the tracker started, last
// is the tracker's start: an agent restart forgets sessions, and a
// container is never idle since before the agent started.
func (a *Activity) LastActivity(containerID string) (last time.Time, active bool) {
	if a == nil {
		return time.Time{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.containers[containerID]
	switch {
	case c == nil:
		return latest(a.start, a.floor), false
	case c.open > 0:
		return a.now(), true
	default:
		return c.ended, false
	}
}

// Forget drops container containerID, which no longer exists: its open
// sessions end without calling onEnd.
func (a *Activity) Forget(containerID string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.containers, containerID)
}

// pruneLocked forgets, at most once an hour, the containers whose last
// session ended more than activityRetention ago.
func (a *Activity) pruneLocked(now time.Time) {
	if now.Sub(a.lastPrune) < time.Hour {
		return
	}
	a.lastPrune = now
	for id, c := range a.containers {
		if c.open == 0 && now.Sub(c.ended) > activityRetention {
			a.floor = latest(a.floor, c.ended)
			delete(a.containers, id)
		}
	}
}

func latest(t, u time.Time) time.Time {
	if u.After(t) {
		return u
	}
	return t
}
