package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// check tells whether a pod reached the awaited state; an error means it
// never will (e.g. the container exited when Running was awaited).
type check func(*v1.Pod) (bool, error)

// waiter is one awaited state of one pod.
type waiter struct {
	check check
	done  chan struct{}
	// at and err are set before done is closed.
	at  time.Time
	err error
}

// watcher is the one pod informer of a run: every latency ends when its
// event handler sees the awaited state, so the bench never polls.
type watcher struct {
	lister corelisters.PodLister
	mu     sync.Mutex
	// waits maps namespace/name to the waiters of that pod.
	waits map[string]map[*waiter]struct{}
}

// startWatcher starts an informer on the pods labelled selector in every
// namespace and waits for its cache to fill.
func startWatcher(ctx context.Context, cs kubernetes.Interface, selector string) (*watcher, error) {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Pods()
	w := &watcher{lister: inf.Lister(), waits: map[string]map[*waiter]struct{}{}}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj) },
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	}); err != nil {
		return nil, fmt.Errorf("add pod event handler: %w", err)
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("sync informer for %v: %w", typ, ctx.Err())
		}
	}
	return w, nil
}

// observe runs on the informer's goroutine: it only takes the time and
// evaluates the pod's waiters.
func (w *watcher) observe(obj any) {
	now := time.Now()
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	key := pod.Namespace + "/" + pod.Name
	for wt := range w.waits[key] {
		done, err := wt.check(pod)
		if !done && err == nil {
			continue
		}
		wt.at, wt.err = now, err
		close(wt.done)
		delete(w.waits[key], wt)
	}
	if len(w.waits[key]) == 0 {
		delete(w.waits, key)
	}
}

// register adds a waiter for the pod; call it before the request whose
// effect it awaits, so that no event can be missed.
func (w *watcher) register(ns, name string, c check) *waiter {
	wt := &waiter{check: c, done: make(chan struct{})}
	key := ns + "/" + name
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waits[key] == nil {
		w.waits[key] = map[*waiter]struct{}{}
	}
	w.waits[key][wt] = struct{}{}
	return wt
}

// forget drops a waiter that will not be waited for any more.
func (w *watcher) forget(ns, name string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waits[ns+"/"+name], wt)
}

// wait returns when the state was seen, the check failed, or ctx ends.
func (w *watcher) wait(ctx context.Context, wt *waiter) (time.Time, error) {
	select {
	case <-wt.done:
		return wt.at, wt.err
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// pod returns the cached pod, nil when the cache does not hold it.
func (w *watcher) pod(ns, name string) *v1.Pod {
	p, err := w.lister.Pods(ns).Get(name)
	if err != nil {
		return nil
	}
	return p
}
