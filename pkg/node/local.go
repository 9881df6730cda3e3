package node

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalNode returns the Node as this agent registers and reports it:
// name, labels, capacity, allocatable and conditions. Pod admission reads
// it while the API's Node is not known yet (before registration), as the
// kubelet falls back to its initial node.
func (c *Controller) LocalNode() *v1.Node {
	n := c.initialNode()
	c.mu.Lock()
	c.setStatus(&n.Status, metav1.NewTime(c.clock.Now()))
	c.mu.Unlock()
	return n
}
