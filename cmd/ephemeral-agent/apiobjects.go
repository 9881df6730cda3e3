package main

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/objectcache"
)

// apiObjects gives what pods reference: configMaps and secrets from the
// watch-based cache (a sync never waits on a GET), service account tokens
// with one POST each. The Node authorizer allows exactly these for pods
// bound to the node.
type apiObjects struct {
	client  kubernetes.Interface
	objects *objectcache.Manager
}

func (a apiObjects) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return a.objects.ConfigMap(ctx, namespace, name)
}

func (a apiObjects) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return a.objects.Secret(ctx, namespace, name)
}

func (a apiObjects) CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return a.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
}

// registeringSyncer registers the objects a pod references before each of
// its syncs, as the kubelet's SyncPod does, so that every read of the sync
// finds its watch started; a pod gone or finished is unregistered, which
// stops the watches no other pod needs.
type registeringSyncer struct {
	kuberuntime.PodSyncer
	pods    kuberuntime.PodSource
	objects *objectcache.Manager
}

func (s registeringSyncer) SyncPod(ctx context.Context, uid types.UID) (kuberuntime.SyncResult, error) {
	if pod, ok := s.pods.GetPodByUID(uid); ok && pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
		s.objects.RegisterPod(pod)
	} else {
		s.objects.UnregisterPod(uid)
	}
	return s.PodSyncer.SyncPod(ctx, uid)
}
