package main

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiObjects reads what pods reference (configMaps, secrets) and requests
// service account tokens, one GET or POST each: the Node authorizer allows
// exactly these for pods bound to the node, and no list or watch.
type apiObjects struct{ client kubernetes.Interface }

func (a apiObjects) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	cm, err := a.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	return cm, kubeletNotFound(err, "configmap", name)
}

func (a apiObjects) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	s, err := a.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	return s, kubeletNotFound(err, "secret", name)
}

// kubeletNotFound words a NotFound error as the kubelet's (`configmap "x"
// not found`, singular), which users see in Waiting messages and Events.
func kubeletNotFound(err error, resource, name string) error {
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(v1.Resource(resource), name)
	}
	return err
}

func (a apiObjects) CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return a.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
}
