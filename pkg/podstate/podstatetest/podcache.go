package podstatetest

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodCache stands for the agent's informer cache of pods by UID, which the
// sync loop and the status manager read; tests change it by hand, as watch
// events would. It is safe for concurrent use.
type PodCache struct {
	mu   sync.Mutex
	pods map[types.UID]*v1.Pod
}

// NewPodCache returns a cache holding pods.
func NewPodCache(pods ...*v1.Pod) *PodCache {
	c := &PodCache{pods: map[types.UID]*v1.Pod{}}
	for _, p := range pods {
		c.Set(p)
	}
	return c
}

// GetPodByUID returns the pod with that UID, if the cache holds it.
func (c *PodCache) GetPodByUID(uid types.UID) (*v1.Pod, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[uid]
	return p, ok
}

// Set adds p or replaces the pod of its UID.
func (c *PodCache) Set(p *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods[p.UID] = p
}

// Remove drops the pod with that UID.
func (c *PodCache) Remove(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods, uid)
}
