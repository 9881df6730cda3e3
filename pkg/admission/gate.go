package admission

import (
	"context"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Pods lists the pods bound to the node, as the agent's pod cache holds
// them (podsource.Source satisfies it).
type Pods interface {
	Pods() []*v1.Pod
}

// NodeGetter returns the node to admit pods on: as the API holds it
// (labels and taints set by others included), or as the agent registers it
// while the API's is not known. fresh asks for the API's current one
// rather than a cached one: the kubelet asks again before rejecting a pod
// for node affinity alone, in case the node's labels just changed.
type NodeGetter func(ctx context.Context, fresh bool) *v1.Node

// GateConfig configures a Gate.
type GateConfig struct {
	Pods Pods
	Node NodeGetter
	// OS is the node's operating system, runtime.GOOS.
	OS string
	// Volume says why a volume cannot be set up on this node (Input.Volume).
	Volume func(*v1.Volume) error
}

// Gate admits each pod of the node once and remembers the answer. It is
// safe for concurrent use.
//
// Pods are admitted in creation order, as the kubelet admits them: before a
// pod is decided, every pod of the cache created before it and not yet
// decided is, so that which pods get the node's resources does not depend
// on the order in which pods are synced. A pod whose phase is already
// terminal when first seen (it ended before the agent started, a rejection
// included) is neither admitted nor rejected: nothing of it starts again,
// and it takes no resources.
type Gate struct {
	cfg GateConfig

	mu      sync.Mutex
	decided map[types.UID]*decision
}

type decision struct {
	Result
	// told is set once the rejection was returned to a caller as first.
	told bool
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) *Gate {
	return &Gate{cfg: cfg, decided: map[types.UID]*decision{}}
}

// Admit returns whether the node runs pod, deciding it on the first call
// and giving the same Result ever after. first is true the one time a
// rejection is returned, so that the caller tells it once (the kubelet's
// Warning Event). A pod already terminal when first seen gets
// Result{Admit: true}: the caller handles it as any pod that ended.
func (g *Gate) Admit(ctx context.Context, pod *v1.Pod) (r Result, first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.decided[pod.UID]
	if d == nil {
		if terminal(pod) {
			return Result{Admit: true}, false
		}
		d = g.decideInOrder(ctx, pod)
	}
	if !d.Admit && !d.told {
		d.told = true
		return d.Result, true
	}
	return d.Result, false
}

// Forget drops the decision of a pod that is gone.
func (g *Gate) Forget(uid types.UID) {
	g.mu.Lock()
	delete(g.decided, uid)
	g.mu.Unlock()
}

// decideInOrder decides, in creation order, the undecided pods of the
// cache created before pod, then pod. g.mu is held.
func (g *Gate) decideInOrder(ctx context.Context, pod *v1.Pod) *decision {
	cached := g.cfg.Pods.Pods()
	var earlier []*v1.Pod
	for _, p := range cached {
		if p.UID != pod.UID && g.decided[p.UID] == nil && !terminal(p) && before(p, pod) {
			earlier = append(earlier, p)
		}
	}
	slices.SortFunc(earlier, func(a, b *v1.Pod) int {
		switch {
		case before(a, b):
			return -1
		case before(b, a):
			return 1
		}
		return 0
	})
	for _, p := range earlier {
		g.decided[p.UID] = g.decide(ctx, p, cached)
	}
	d := g.decide(ctx, pod, cached)
	g.decided[pod.UID] = d
	return d
}

// decide decides one pod against the pods admitted so far that are still
// in cached and have not ended.
func (g *Gate) decide(ctx context.Context, pod *v1.Pod, cached []*v1.Pod) *decision {
	var admitted []*v1.Pod
	for _, p := range cached {
		if d := g.decided[p.UID]; d != nil && d.Admit && p.UID != pod.UID && !terminal(p) {
			admitted = append(admitted, p)
		}
	}
	in := Input{Pod: pod, Node: g.cfg.Node(ctx, false), Admitted: admitted, OS: g.cfg.OS, Volume: g.cfg.Volume}
	r := Admit(ctx, in)
	if !r.Admit && r.Reason == ReasonNodeAffinity {
		in.Node = g.cfg.Node(ctx, true)
		r = Admit(ctx, in)
	}
	logger := klog.FromContext(ctx)
	if r.Admit {
		logger.V(3).Info("Admitted pod", "pod", klog.KObj(pod), "podUID", pod.UID)
	} else {
		logger.Info("Rejected pod", "pod", klog.KObj(pod), "podUID", pod.UID, "reason", r.Reason, "message", r.Message)
	}
	return &decision{Result: r}
}

// terminal reports a pod whose phase says it ended.
func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

// before orders pods by creation time, then by UID so that the order is
// the same from one call to the next.
func before(a, b *v1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}
