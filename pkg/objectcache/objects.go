package objectcache

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// kind is one kind of object the cache watches: how to list and watch it
// in a namespace, and when it can no longer change.
type kind struct {
	// resource names the kind in NotFound errors, singular as the
	// kubelet's (`configmap "x" not found`), which users read in Events.
	resource  schema.GroupResource
	newObject func() runtime.Object
	list      func(ctx context.Context, namespace string, opts metav1.ListOptions) (runtime.Object, error)
	watch     func(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	immutable func(runtime.Object) bool
	// client tells the reflectors whether it serves watch-list streams.
	client any
}

// objects caches the objects of one kind that registered pods reference,
// each through a reflector of its own.
type objects struct {
	kind
	// ctx bounds every reflector and carries the logger.
	ctx         context.Context
	syncTimeout time.Duration
	clock       clock.PassiveClock
	// maxIdle is how long a watch no one reads runs: objects read only
	// when a container starts (env) then cost no watch until the next
	// start.
	maxIdle time.Duration
	wg      sync.WaitGroup

	mu      sync.Mutex
	items   map[objectKey]*item
	stopped bool
}

type objectKey struct{ namespace, name string }

// item is one watched object.
type item struct {
	// refs are the pods that reference the object; the watch ends with
	// the last.
	refs sets.Set[types.UID]
	// store is replaced when a stopped watch restarts: the old reflector
	// may still write to its own while it stops.
	store *syncedStore
	// stop ends the reflector; nil once it is stopped.
	stop       context.CancelFunc
	lastAccess time.Time
	// immutable is set once the object was seen immutable: its watch
	// never restarts.
	immutable bool
}

func newObjects(ctx context.Context, k kind, syncTimeout, maxIdle time.Duration, clk clock.PassiveClock) *objects {
	return &objects{kind: k, ctx: ctx, syncTimeout: syncTimeout, maxIdle: maxIdle, clock: clk, items: map[objectKey]*item{}}
}

// addReference notes that pod uid references namespace/name, starting its
// watch when it is the first pod to.
func (o *objects) addReference(namespace, name string, uid types.UID) {
	key := objectKey{namespace, name}
	o.mu.Lock()
	defer o.mu.Unlock()
	it, ok := o.items[key]
	if !ok {
		it = &item{refs: sets.New[types.UID](), lastAccess: o.clock.Now()}
		if !o.stopped {
			o.startLocked(key, it)
		}
		o.items[key] = it
	}
	it.refs.Insert(uid)
}

// deleteReference notes that pod uid no longer references namespace/name,
// stopping its watch when no pod does.
func (o *objects) deleteReference(namespace, name string, uid types.UID) {
	key := objectKey{namespace, name}
	o.mu.Lock()
	defer o.mu.Unlock()
	it, ok := o.items[key]
	if !ok {
		return
	}
	it.refs.Delete(uid)
	if it.refs.Len() == 0 {
		it.stopLocked()
		delete(o.items, key)
	}
}

// startLocked runs a reflector that lists and watches the one object: the
// field selector on its name is what the Node authorizer allows a node
// for an object its pods reference.
func (o *objects) startLocked(key objectKey, it *item) {
	selector := fields.OneTermEqualSelector("metadata.name", key.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return o.list(ctx, key.namespace, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return o.watch(ctx, key.namespace, opts)
		},
	}
	store := &syncedStore{Store: cache.NewStore(cache.MetaNamespaceKeyFunc)}
	r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, o.client), o.newObject(), store, cache.ReflectorOptions{
		Name: fmt.Sprintf("%s %s/%s", o.resource.Resource, key.namespace, key.name),
		// As the kubelet's: one object changes seldom, and re-opening
		// thousands of watches every few minutes costs the API server.
		MinWatchTimeout: 30 * time.Minute,
	})
	ctx, cancel := context.WithCancel(o.ctx)
	it.stop = cancel
	it.store = store
	o.wg.Go(func() { r.RunWithContext(ctx) })
}

func (it *item) stopLocked() {
	if it.stop != nil {
		it.stop()
		it.stop = nil
	}
}

// get returns the cached object, waiting for the watch's first list when
// it is new. A missing object is a NotFound error, as the API's.
func (o *objects) get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	key := objectKey{namespace, name}
	o.mu.Lock()
	it, ok := o.items[key]
	var store *syncedStore
	if ok {
		it.lastAccess = o.clock.Now()
		if it.stop == nil && !it.immutable && !o.stopped {
			// Stopped as idle: the object may have changed since.
			o.startLocked(key, it)
		}
		store = it.store
	}
	o.mu.Unlock()
	if !ok || store == nil {
		// Objects are read for pods being synced, which registers them
		// first: this is a caller's mistake, not a missing object.
		return nil, fmt.Errorf("%s %q/%q not registered", o.resource.Resource, namespace, name)
	}
	if !store.hasSynced() {
		ctx, cancel := context.WithTimeout(ctx, o.syncTimeout)
		defer cancel()
		if err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			return store.hasSynced(), nil
		}); err != nil {
			return nil, fmt.Errorf("failed to sync %s cache: %w", o.resource, err)
		}
	}
	obj, exists, err := store.GetByKey(cache.NewObjectName(namespace, name).String())
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, apierrors.NewNotFound(o.resource, name)
	}
	if o.immutable(obj.(runtime.Object)) {
		// It can no longer change: the watch is of no more use, and the
		// store keeps the object for as long as pods reference it.
		o.mu.Lock()
		it.immutable = true
		if it.stop != nil {
			it.stopLocked()
			klog.FromContext(o.ctx).V(4).Info("Stopped watching an immutable object", "resource", o.resource.Resource, "object", klog.KRef(namespace, name))
		}
		o.mu.Unlock()
	}
	return obj.(runtime.Object), nil
}

// stopIdle stops the watches no one read for maxIdle. A watch that has
// not listed yet keeps going: stopping it would throw away a list an
// overloaded API server may be working on.
func (o *objects) stopIdle() {
	now := o.clock.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, it := range o.items {
		if it.stop != nil && it.store.hasSynced() && now.Sub(it.lastAccess) > o.maxIdle {
			it.stopLocked()
			klog.FromContext(o.ctx).V(4).Info("Stopped watching an object not read for a while", "resource", o.resource.Resource, "object", klog.KRef(key.namespace, key.name), "maxIdle", o.maxIdle)
		}
	}
}

// shutdown ends every watch and waits for their reflectors to return; later
// references start none.
func (o *objects) shutdown() {
	o.mu.Lock()
	o.stopped = true
	for _, it := range o.items {
		it.stopLocked()
	}
	o.mu.Unlock()
	o.wg.Wait()
}

// watched returns the keys of the objects with a running watch.
func (o *objects) watched() []objectKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []objectKey
	for k, it := range o.items {
		if it.stop != nil {
			out = append(out, k)
		}
	}
	return out
}

// syncedStore is a store that knows when its reflector's first list
// filled it.
type syncedStore struct {
	cache.Store
	mu     sync.Mutex
	synced bool
}

// Replace fills the store with a whole list, as a reflector does first.
func (s *syncedStore) Replace(list []any, resourceVersion string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Store.Replace(list, resourceVersion); err != nil {
		return err
	}
	s.synced = true
	return nil
}

func (s *syncedStore) hasSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}
