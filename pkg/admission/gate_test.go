package admission

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podList is a pod cache whose content the test changes.
type podList struct {
	mu   sync.Mutex
	pods []*v1.Pod
}

func (l *podList) Pods() []*v1.Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*v1.Pod(nil), l.pods...)
}

func created(sec int) func(*v1.Pod) {
	return func(p *v1.Pod) { p.CreationTimestamp = metav1.NewTime(time.Unix(int64(1000+sec), 0)) }
}

func cpu(q string) func(*v1.Pod) {
	return requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse(q)})
}

func newTestGate(pods *podList, node func(fresh bool) *v1.Node) *Gate {
	return NewGate(GateConfig{Pods: pods, OS: "linux", Node: func(_ context.Context, fresh bool) *v1.Node { return node(fresh) }})
}

func TestGateAdmitsInCreationOrder(t *testing.T) {
	// Three pods of 1 cpu each on a 2-cpu node: the newest is rejected,
	// whichever is synced first.
	oldest, middle, newest := pod("oldest", created(1), cpu("1")), pod("middle", created(2), cpu("1")), pod("newest", created(3), cpu("1"))
	pods := &podList{pods: []*v1.Pod{newest, middle, oldest}}
	g := newTestGate(pods, func(bool) *v1.Node { return testNode() })

	r, first := g.Admit(context.Background(), newest)
	if r.Admit || r.Reason != "OutOfcpu" || !first {
		t.Fatalf("Admit(newest) = %+v, first %v; want OutOfcpu, first", r, first)
	}
	for _, p := range []*v1.Pod{oldest, middle} {
		if r, first := g.Admit(context.Background(), p); !r.Admit || first {
			t.Errorf("Admit(%s) = %+v, first %v; want admitted", p.Name, r, first)
		}
	}
	// The rejection is told once, and stays.
	if r, first := g.Admit(context.Background(), newest); r.Admit || first {
		t.Errorf("Admit(newest) again = %+v, first %v; want rejected, not first", r, first)
	}
}

func TestGateEarlierRejectionIsToldOnItsOwnSync(t *testing.T) {
	// The oldest pod is decided when the newer one is synced first; its
	// rejection is still told to the first sync of the oldest.
	oldest, newest := pod("oldest", created(1), cpu("3")), pod("newest", created(2), cpu("1"))
	g := newTestGate(&podList{pods: []*v1.Pod{oldest, newest}}, func(bool) *v1.Node { return testNode() })
	if r, _ := g.Admit(context.Background(), newest); !r.Admit {
		t.Fatalf("Admit(newest) = %+v, want admitted", r)
	}
	if r, first := g.Admit(context.Background(), oldest); r.Admit || !first {
		t.Fatalf("Admit(oldest) = %+v, first %v; want rejected, first", r, first)
	}
}

func TestGateFreesEndedAndGonePods(t *testing.T) {
	a, b := pod("a", created(1), cpu("2")), pod("b", created(2), cpu("2"))
	pods := &podList{pods: []*v1.Pod{a}}
	g := newTestGate(pods, func(bool) *v1.Node { return testNode() })
	if r, _ := g.Admit(context.Background(), a); !r.Admit {
		t.Fatalf("Admit(a) = %+v", r)
	}
	// a ended: its cpu is free for b.
	ended := a.DeepCopy()
	ended.Status.Phase = v1.PodSucceeded
	pods.pods = []*v1.Pod{ended, b}
	if r, _ := g.Admit(context.Background(), b); !r.Admit {
		t.Fatalf("Admit(b) after a ended = %+v, want admitted", r)
	}
	// c is rejected while b runs, d admitted once b is gone.
	c, d := pod("c", created(3), cpu("1")), pod("d", created(4), cpu("1"))
	pods.pods = []*v1.Pod{ended, b, c}
	if r, _ := g.Admit(context.Background(), c); r.Admit {
		t.Fatalf("Admit(c) = %+v, want rejected", r)
	}
	pods.pods = []*v1.Pod{d}
	g.Forget(b.UID)
	if r, _ := g.Admit(context.Background(), d); !r.Admit {
		t.Fatalf("Admit(d) after b is gone = %+v, want admitted", r)
	}
}

func TestGateTerminalPodIsNotDecided(t *testing.T) {
	p := pod("done", cpu("5"))
	p.Status.Phase = v1.PodFailed
	g := newTestGate(&podList{pods: []*v1.Pod{p}}, func(bool) *v1.Node { return testNode() })
	if r, first := g.Admit(context.Background(), p); !r.Admit || first {
		t.Fatalf("Admit(terminal) = %+v, first %v; want passed through", r, first)
	}
}

func TestGateDecisionIsFinal(t *testing.T) {
	p := pod("a", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	node := testNode()
	g := newTestGate(&podList{pods: []*v1.Pod{p}}, func(bool) *v1.Node { return node })
	if r, _ := g.Admit(context.Background(), p); !r.Admit {
		t.Fatalf("Admit = %+v", r)
	}
	node = testNode()
	node.Labels["disk"] = "hdd"
	if r, _ := g.Admit(context.Background(), p); !r.Admit {
		t.Fatalf("Admit after the node's label changed = %+v, want still admitted", r)
	}
}

func TestGateAsksForAFreshNodeBeforeAffinityRejection(t *testing.T) {
	p := pod("a", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} })
	var fetched []bool
	g := newTestGate(&podList{pods: []*v1.Pod{p}}, func(fresh bool) *v1.Node {
		fetched = append(fetched, fresh)
		n := testNode()
		if fresh {
			n.Labels["zone"] = "a" // labelled just now
		}
		return n
	})
	if r, _ := g.Admit(context.Background(), p); !r.Admit {
		t.Fatalf("Admit = %+v, want admitted on the fresh node", r)
	}
	if len(fetched) != 2 || fetched[0] || !fetched[1] {
		t.Errorf("node fetches (fresh) = %v, want [false true]", fetched)
	}
}
