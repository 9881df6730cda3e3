// Package podsource watches the pods bound to one node and answers, from
// its cache, which pod has a given UID. The sync loop keys everything by
// UID: a pod deleted and re-created under the same name is a new pod.
package podsource

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const uidIndex = "uid"

// Source is an informer on the node's pods.
type Source struct {
	informer cache.SharedIndexInformer
}

// New returns a Source for the pods with spec.nodeName = nodeName.
func New(client kubernetes.Interface, nodeName string) (*Source, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*v1.Pod); ok {
			return []string{string(p.UID)}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("add pod UID index: %w", err)
	}
	return &Source{informer: inf}, nil
}

// OnChange makes the Source call onChange with the UID of every pod
// added, updated or deleted, a deletion the watch missed included. An
// update that changes nothing the agent acts upon but the status (its own
// status writes above all) calls onStatusChange instead: as the kubelet's
// pod config tells such a reconcile from an update, so that the agent's
// status writes need not each be a new trigger of the pod's sync. It is
// separate from New so that the Source can serve the pod cache to those
// that onChange feeds (the sync loop) before they exist; call it before Run.
func (s *Source) OnChange(onChange, onStatusChange func(types.UID)) error {
	notify := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*v1.Pod); ok {
			onChange(p.UID)
		}
	}
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify,
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*v1.Pod)
			p, ok2 := obj.(*v1.Pod)
			if ok1 && ok2 && !differSemantically(o, p) {
				onStatusChange(p.UID)
				return
			}
			notify(obj)
		},
		DeleteFunc: notify,
	}); err != nil {
		return fmt.Errorf("add pod event handler: %w", err)
	}
	return nil
}

// differSemantically reports whether a pod's update changes what the agent
// acts upon, the kubelet's podsDifferSemantically: its spec, labels,
// annotations or deletion.
func differSemantically(old, p *v1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, p.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, p.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, p.Annotations) ||
		!equality.Semantic.DeepEqual(old.DeletionTimestamp, p.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, p.DeletionGracePeriodSeconds)
}

// Run runs the informer until ctx ends.
func (s *Source) Run(ctx context.Context) { s.informer.RunWithContext(ctx) }

// WaitForSync waits until the cache holds the node's pods, so the first
// syncs do not mistake a pod for deleted.
func (s *Source) WaitForSync(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced)
}

// GetPodByUID returns the cached pod with that UID.
func (s *Source) GetPodByUID(uid types.UID) (*v1.Pod, bool) {
	objs, err := s.informer.GetIndexer().ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil, false
	}
	return objs[0].(*v1.Pod), true
}

// GetPod returns the cached pod with that namespace and name.
func (s *Source) GetPod(namespace, name string) (*v1.Pod, bool) {
	obj, ok, err := s.informer.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return obj.(*v1.Pod), true
}

// Pods returns every cached pod.
func (s *Source) Pods() []*v1.Pod {
	var out []*v1.Pod
	for _, o := range s.informer.GetIndexer().List() {
		out = append(out, o.(*v1.Pod))
	}
	return out
}
