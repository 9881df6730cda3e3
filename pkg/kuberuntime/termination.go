package kuberuntime

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// terminationPrereqs says, for each running container of pod (by name)
// that must wait before it is stopped, which running containers must have
// stopped first, as the kubelet's terminationOrdering: a sidecar waits for
// every regular container and for the sidecars declared after it, so
// sidecars stop after the main containers, in reverse order. Regular and
// ephemeral containers wait for nothing. It is pure.
func terminationPrereqs(pod *v1.Pod, running map[string]bool) map[string][]string {
	var mains []string
	for _, c := range pod.Spec.Containers {
		if running[c.Name] {
			mains = append(mains, c.Name)
		}
	}
	out := map[string][]string{}
	var later []string
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		if !podstate.IsSidecar(c) {
			continue
		}
		if running[c.Name] && len(mains)+len(later) > 0 {
			out[c.Name] = append(append([]string{}, mains...), later...)
		}
		if running[c.Name] {
			later = []string{c.Name}
		}
	}
	return out
}

// terminationOrder makes the containers of one killPod wait for their turn
// (terminationPrereqs). A container's turn never outlasts its grace period:
// past it, it is stopped all the same.
type terminationOrder struct {
	clock   clock.Clock
	prereqs map[string][]string
	// stopped has a channel per running container, closed once it
	// stopped; the map itself is never changed after construction.
	stopped map[string]chan struct{}
	mu      sync.Mutex
}

func newTerminationOrder(clk clock.Clock, pod *v1.Pod, running []string) *terminationOrder {
	set := map[string]bool{}
	o := &terminationOrder{clock: clk, stopped: map[string]chan struct{}{}}
	for _, n := range running {
		set[n] = true
		o.stopped[n] = make(chan struct{})
	}
	o.prereqs = terminationPrereqs(pod, set)
	return o
}

// wait blocks until the containers name waits for have stopped, grace runs
// out or ctx ends, and returns how long it waited.
func (o *terminationOrder) wait(ctx context.Context, name string, grace time.Duration) time.Duration {
	if o == nil || len(o.prereqs[name]) == 0 || grace <= 0 {
		return 0
	}
	start := o.clock.Now()
	t := o.clock.NewTimer(grace)
	defer t.Stop()
	for _, p := range o.prereqs[name] {
		select {
		case <-o.stopped[p]:
		case <-t.C():
			return o.clock.Since(start)
		case <-ctx.Done():
			return o.clock.Since(start)
		}
	}
	return o.clock.Since(start)
}

// done tells those waiting that name has stopped (or failed to: waiting
// longer would not help).
func (o *terminationOrder) done(name string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch, ok := o.stopped[name]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}
