package server

import (
	"cmp"
	"context"
	"net/http"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// PodLister lists the pods bound to this node, for /pods.
type PodLister interface {
	Pods() []*v1.Pod
}

// ContainerLister lists the runtime's containers, for /runningpods/
// (k8s.io/cri-client's RuntimeService satisfies it).
type ContainerLister interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
}

// podsHandler serves /pods: the node's pods as a v1 PodList, as the API
// server knows them.
func podsHandler(pods PodLister) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writePodList(w, r, pods.Pods())
	})
}

// runningPodsHandler serves /runningpods/: the pods that have running
// containers according to the runtime, each with only its name, namespace,
// UID and those containers' names and images, as the kubelet answers.
func runningPodsHandler(rt ContainerLister) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		containers, err := rt.ListContainers(r.Context(), &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writePodList(w, r, runningPods(containers))
	})
}

// runningPods groups containers by the pod labels the agent gives them;
// containers without them are not a pod's.
func runningPods(containers []*runtimeapi.Container) []*v1.Pod {
	byUID := map[types.UID]*v1.Pod{}
	for _, c := range containers {
		l := c.GetLabels()
		uid := types.UID(l[criconfig.LabelPodUID])
		if uid == "" || l[criconfig.LabelContainerName] == "" {
			continue
		}
		p := byUID[uid]
		if p == nil {
			p = &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: l[criconfig.LabelPodName], Namespace: l[criconfig.LabelPodNamespace], UID: uid}}
			byUID[uid] = p
		}
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: l[criconfig.LabelContainerName], Image: c.GetImage().GetImage()})
	}
	pods := make([]*v1.Pod, 0, len(byUID))
	for _, p := range byUID {
		slices.SortFunc(p.Spec.Containers, func(a, b v1.Container) int { return cmp.Compare(a.Name, b.Name) })
		pods = append(pods, p)
	}
	slices.SortFunc(pods, func(a, b *v1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	return pods
}

func writePodList(w http.ResponseWriter, r *http.Request, pods []*v1.Pod) {
	list := &v1.PodList{Items: make([]v1.Pod, 0, len(pods))}
	for _, p := range pods {
		list.Items = append(list.Items, *p)
	}
	// The v1 codec sets kind and apiVersion, as the kubelet's output has.
	data, err := runtime.Encode(scheme.Codecs.LegacyCodec(v1.SchemeGroupVersion), list)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(data); err != nil {
		klog.FromContext(r.Context()).V(4).Info("Failed to write pod list", "err", err)
	}
}
