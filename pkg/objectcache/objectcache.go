// Package objectcache serves the ConfigMaps and Secrets that the node's
// pods reference from a local cache, as the kubelet's watch-based object
// managers do: each referenced object has a list and watch of its own (a
// field selector on its name), started when the first pod references it
// and stopped when the last stops, or once the object is seen immutable.
// A watch no one read for a while (DefaultMaxIdle) stops too, and starts
// again, with a fresh list, on the next read.
//
// Single-object watches are what the Node authorizer allows a node, for
// objects its pods reference; they make a pod sync purely local, where a
// GET per object and sync made a slow API server delay every sync and 100
// pods throttle the agent's client.
package objectcache

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// DefaultSyncTimeout is how long Get waits for a new watch's first list,
// the kubelet's: a sync asking for an object the API server cannot give
// fails soon and is retried, instead of holding its worker.
const DefaultSyncTimeout = time.Second

// DefaultMaxIdle is how long a watch runs without reads before it stops,
// until the next read: the kubelet's five times its default sync
// frequency. Volumes are read on every sync, so only objects read when a
// container starts (env, pull secrets) go idle.
const DefaultMaxIdle = 5 * time.Minute

// Manager caches the ConfigMaps and Secrets of registered pods. Its
// methods are safe for concurrent use.
type Manager struct {
	configMaps *objects
	secrets    *objects
	// cancel ends the watches and the idle check; wg waits for the check.
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	pods map[types.UID]podRefs
}

// podRefs are the objects one pod references, all in its namespace.
type podRefs struct {
	namespace           string
	configMaps, secrets sets.Set[string]
}

// Option configures a Manager.
type Option func(*config)

type config struct {
	syncTimeout, maxIdle time.Duration
	clock                clock.WithTicker
}

// WithSyncTimeout sets how long a Get waits for a new watch's first list
// (DefaultSyncTimeout otherwise).
func WithSyncTimeout(d time.Duration) Option { return func(c *config) { c.syncTimeout = d } }

// WithMaxIdle sets how long a watch runs without reads before it stops
// until the next read (DefaultMaxIdle otherwise).
func WithMaxIdle(d time.Duration) Option { return func(c *config) { c.maxIdle = d } }

// WithClock sets the clock idle watches are timed with; tests use a fake.
func WithClock(clk clock.WithTicker) Option { return func(c *config) { c.clock = clk } }

// New returns a Manager reading through client. ctx bounds every watch
// and gives them their logger; Stop ends them sooner.
func New(ctx context.Context, client kubernetes.Interface, opts ...Option) *Manager {
	cfg := config{syncTimeout: DefaultSyncTimeout, maxIdle: DefaultMaxIdle, clock: clock.RealClock{}}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(ctx)
	core := client.CoreV1()
	configMaps := kind{
		resource:  v1.Resource("configmap"),
		newObject: func() runtime.Object { return &v1.ConfigMap{} },
		list: func(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
			return core.ConfigMaps(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
			return core.ConfigMaps(ns).Watch(ctx, o)
		},
		immutable: func(o runtime.Object) bool {
			cm, ok := o.(*v1.ConfigMap)
			return ok && cm.Immutable != nil && *cm.Immutable
		},
		client: client,
	}
	secrets := kind{
		resource:  v1.Resource("secret"),
		newObject: func() runtime.Object { return &v1.Secret{} },
		list: func(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
			return core.Secrets(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
			return core.Secrets(ns).Watch(ctx, o)
		},
		immutable: func(o runtime.Object) bool {
			s, ok := o.(*v1.Secret)
			return ok && s.Immutable != nil && *s.Immutable
		},
		client: client,
	}
	m := &Manager{
		configMaps: newObjects(ctx, configMaps, cfg.syncTimeout, cfg.maxIdle, cfg.clock),
		secrets:    newObjects(ctx, secrets, cfg.syncTimeout, cfg.maxIdle, cfg.clock),
		cancel:     cancel,
		pods:       map[types.UID]podRefs{},
	}
	ticker := cfg.clock.NewTicker(min(cfg.maxIdle, time.Minute))
	m.wg.Go(func() {
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
				m.configMaps.stopIdle()
				m.secrets.stopIdle()
			}
		}
	})
	return m
}

// RegisterPod makes the Manager watch what pod references, and stop
// watching what an earlier version of it referenced and it no longer does
// (ephemeral containers add references, for instance). It is cheap when
// nothing changed, so that every sync can call it.
func (m *Manager) RegisterPod(pod *v1.Pod) {
	now := referencesOf(pod)
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.pods[pod.UID]
	if !ok {
		prev = podRefs{namespace: pod.Namespace, configMaps: sets.New[string](), secrets: sets.New[string]()}
	}
	m.pods[pod.UID] = now
	diff(m.configMaps, pod.UID, prev.namespace, prev.configMaps, now.namespace, now.configMaps)
	diff(m.secrets, pod.UID, prev.namespace, prev.secrets, now.namespace, now.secrets)
}

// UnregisterPod drops the references of the pod with that UID; watches no
// other pod needs stop.
func (m *Manager) UnregisterPod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.pods[uid]
	if !ok {
		return
	}
	delete(m.pods, uid)
	diff(m.configMaps, uid, prev.namespace, prev.configMaps, prev.namespace, nil)
	diff(m.secrets, uid, prev.namespace, prev.secrets, prev.namespace, nil)
}

// diff moves pod uid's references in o from the names it had to the ones
// it has: references are added before others are dropped, so an object in
// both sets keeps its watch.
func diff(o *objects, uid types.UID, prevNS string, prev sets.Set[string], ns string, now sets.Set[string]) {
	for name := range now {
		if prevNS != ns || !prev.Has(name) {
			o.addReference(ns, name, uid)
		}
	}
	for name := range prev {
		if prevNS != ns || !now.Has(name) {
			o.deleteReference(prevNS, name, uid)
		}
	}
}

// ConfigMap returns the cached ConfigMap. It waits for a watch that has
// not listed yet, a short while (WithSyncTimeout) or until ctx ends. A
// missing ConfigMap is an error for which apierrors.IsNotFound is true,
// worded as the kubelet's; one no registered pod references is an error.
func (m *Manager) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	obj, err := m.configMaps.get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	cm, ok := obj.(*v1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("unexpected object type %T in the configmap cache", obj)
	}
	return cm, nil
}

// Secret returns the cached Secret, as ConfigMap does.
func (m *Manager) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	obj, err := m.secrets.get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("unexpected object type %T in the secret cache", obj)
	}
	return s, nil
}

// Stop ends every watch and waits for them; registrations after it start
// none.
func (m *Manager) Stop() {
	m.cancel()
	m.wg.Wait()
	m.configMaps.shutdown()
	m.secrets.shutdown()
}

// referencesOf returns the ConfigMaps and Secrets pod references in what
// this agent reads: env and envFrom of every container (ephemeral ones
// included), configMap, secret and projected volumes, imagePullSecrets.
// Volume kinds the agent does not support (CSI secrets and the like) are
// not read, so not watched.
func referencesOf(pod *v1.Pod) podRefs {
	r := podRefs{namespace: pod.Namespace, configMaps: sets.New[string](), secrets: sets.New[string]()}
	add := func(s sets.Set[string], name string) {
		if name != "" {
			s.Insert(name)
		}
	}
	env := func(env []v1.EnvVar, from []v1.EnvFromSource) {
		for _, f := range from {
			if f.ConfigMapRef != nil {
				add(r.configMaps, f.ConfigMapRef.Name)
			}
			if f.SecretRef != nil {
				add(r.secrets, f.SecretRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				add(r.configMaps, e.ValueFrom.ConfigMapKeyRef.Name)
			}
			if e.ValueFrom.SecretKeyRef != nil {
				add(r.secrets, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		env(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.Containers {
		env(c.Env, c.EnvFrom)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		env(c.Env, c.EnvFrom)
	}
	for _, ref := range pod.Spec.ImagePullSecrets {
		add(r.secrets, ref.Name)
	}
	for _, vol := range pod.Spec.Volumes {
		switch src := vol.VolumeSource; {
		case src.ConfigMap != nil:
			add(r.configMaps, src.ConfigMap.Name)
		case src.Secret != nil:
			add(r.secrets, src.Secret.SecretName)
		case src.Projected != nil:
			for _, p := range src.Projected.Sources {
				if p.ConfigMap != nil {
					add(r.configMaps, p.ConfigMap.Name)
				}
				if p.Secret != nil {
					add(r.secrets, p.Secret.Name)
				}
			}
		}
	}
	return r
}
