package main

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/objectcache"
)

// podMap is a pod source of fixed pods.
type podMap map[types.UID]*v1.Pod

func (m podMap) GetPodByUID(uid types.UID) (*v1.Pod, bool) { p, ok := m[uid]; return p, ok }

// readingSyncer reads the ConfigMap named "settings" in every sync, as a
// sync that sets up a configMap volume does, and keeps the error.
type readingSyncer struct {
	api apiObjects
	err error
}

func (r *readingSyncer) SyncPod(ctx context.Context, _ types.UID) (kuberuntime.SyncResult, error) {
	_, r.err = r.api.ConfigMap(ctx, "ns", "settings")
	return kuberuntime.SyncResult{}, nil
}

// A sync reads the objects of its pod from the cache, registered before
// it; once the pod is finished or gone they are no longer served.
func TestRegisteringSyncer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewClientset(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "settings"}})
	objects := objectcache.New(ctx, client)
	defer func() { cancel(); objects.Stop() }()
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "uid-app"}, Spec: v1.PodSpec{
		Volumes: []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "settings"}}}}},
	}}
	pods := podMap{pod.UID: pod}
	inner := &readingSyncer{api: apiObjects{client: client, objects: objects}}
	s := registeringSyncer{PodSyncer: inner, pods: pods, objects: objects}

	// sync syncs the pod and returns the error of its configMap read.
	sync := func() error {
		t.Helper()
		if _, err := s.SyncPod(ctx, pod.UID); err != nil {
			t.Fatal(err)
		}
		return inner.err
	}
	if err := sync(); err != nil {
		t.Fatalf("configMap read for a running pod: %v", err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" {
			t.Errorf("a sync read %s with a GET, want the watch-based cache", a.GetResource().Resource)
		}
	}

	finished := pod.DeepCopy()
	finished.Status.Phase = v1.PodSucceeded
	pods[pod.UID] = finished
	if err := sync(); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("configMap read for a finished pod: err %v, want it unregistered", err)
	}

	pods[pod.UID] = pod
	if err := sync(); err != nil {
		t.Errorf("configMap read after re-registration: %v", err)
	}
	delete(pods, pod.UID)
	if err := sync(); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("configMap read for a deleted pod: err %v, want it unregistered", err)
	}
}
