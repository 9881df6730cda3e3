package stats

import (
	"sync"
	"time"
)

// duCache remembers DiskUsage results for a while: walking a pod's volumes
// and logs on every scrape would cost more than the scrape. A stale entry is
// still answered, and refreshed by the first caller past its age.
type duCache struct {
	host   Host
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]duEntry
}

type duEntry struct {
	at            time.Time
	bytes, inodes uint64
	err           error
	usedThisRound bool
}

func newDUCache(host Host, maxAge time.Duration, now func() time.Time) *duCache {
	return &duCache{host: host, maxAge: maxAge, now: now, entries: map[string]duEntry{}}
}

// usage returns the bytes and inodes under path, walked at most once per
// maxAge.
func (c *duCache) usage(path string) (uint64, uint64, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[path]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) >= c.maxAge {
		b, i, err := c.host.DiskUsage(path)
		e = duEntry{at: now, bytes: b, inodes: i, err: err}
	}
	e.usedThisRound = true
	c.mu.Lock()
	c.entries[path] = e
	c.mu.Unlock()
	return e.bytes, e.inodes, e.err
}

// sweep forgets the paths not asked for since the previous sweep: volumes
// of pods that are gone.
func (c *duCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, e := range c.entries {
		if !e.usedThisRound {
			delete(c.entries, p)
			continue
		}
		e.usedThisRound = false
		c.entries[p] = e
	}
}
