package main

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiObjects reads what pods reference (configMaps, secrets) and requests
// service account tokens, one GET or POST each: the Node authorizer allows
// exactly these for pods bound to the node, and no list or watch.
type apiObjects struct{ client kubernetes.Interface }

func (a apiObjects) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return a.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a apiObjects) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return a.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a apiObjects) CreateToken(ctx context.Context, namespace, serviceAccount string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return a.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
}
