package stats

import (
	"sync"
	"time"
)

// cpuSample is a cumulative CPU reading: usage in core-nanoseconds at a time.
type cpuSample struct {
	at    time.Time
	usage uint64
}

// cpuRecord is what the cache keeps per key: the sample the last rate was
// computed against and that rate, if any.
type cpuRecord struct {
	sample cpuSample
	rate   *uint64
}

// nextCPURecord decides the cache's next record from the previous one and a
// new sample, and returns the rate (nano cores) to report. A sample closer
// than minInterval to the cached one reuses the cached rate, so that two
// scrapers a moment apart do not each see the noise of a tiny interval. A
// counter that went backwards (a restarted container under the same key)
// starts over.
func nextCPURecord(prev *cpuRecord, cur cpuSample, minInterval time.Duration) (cpuRecord, *uint64) {
	if prev == nil || cur.usage < prev.sample.usage || !cur.at.After(prev.sample.at) {
		return cpuRecord{sample: cur}, nil
	}
	elapsed := cur.at.Sub(prev.sample.at)
	if elapsed < minInterval {
		return *prev, prev.rate
	}
	rate := uint64(float64(cur.usage-prev.sample.usage) / float64(elapsed) * float64(time.Second))
	return cpuRecord{sample: cur, rate: &rate}, &rate
}

// cpuCache keeps the previous CPU sample of containers, pods and the node,
// keyed by container ID, "pod/"+UID and "node".
type cpuCache struct {
	mu          sync.Mutex
	minInterval time.Duration
	records     map[string]cpuRecord
}

func newCPUCache(minInterval time.Duration) *cpuCache {
	return &cpuCache{minInterval: minInterval, records: map[string]cpuRecord{}}
}

// rate records the sample and returns the usage rate in nano cores, nil
// until a second sample is far enough from the first.
func (c *cpuCache) rate(key string, s cpuSample) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var prev *cpuRecord
	if r, ok := c.records[key]; ok {
		prev = &r
	}
	next, rate := nextCPURecord(prev, s, c.minInterval)
	c.records[key] = next
	return rate
}

// keep forgets the keys not in live: containers and pods that are gone.
func (c *cpuCache) keep(live map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.records {
		if !live[k] {
			delete(c.records, k)
		}
	}
}
