// Package runtimeclass resolves a pod's spec.runtimeClassName to the CRI
// runtime handler its sandbox runs with, as the kubelet's runtimeclass
// manager: from a RuntimeClass lister (an informer on node.k8s.io/v1
// RuntimeClasses, which the Node authorizer lets a node read).
package runtimeclass

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	nodev1 "k8s.io/client-go/listers/node/v1"
)

// Resolver looks RuntimeClasses up in a lister.
type Resolver struct {
	lister nodev1.RuntimeClassLister
}

// NewResolver returns a Resolver reading lister.
func NewResolver(lister nodev1.RuntimeClassLister) *Resolver {
	return &Resolver{lister: lister}
}

// LookupRuntimeHandler returns the handler of the RuntimeClass name: ""
// (the runtime's default) when name is nil or empty. A RuntimeClass that
// does not exist is the lister's NotFound error as it is
// (runtimeclass.node.k8s.io "NAME" not found), which the kubelet puts in
// its FailedCreatePodSandBox Event; the sandbox is retried, so a
// RuntimeClass created later is found. The RuntimeClass's overhead and
// scheduling are not applied here: admission and the scheduler did that.
func (r *Resolver) LookupRuntimeHandler(name *string) (string, error) {
	if name == nil || *name == "" {
		return "", nil
	}
	rc, err := r.lister.Get(*name)
	if apierrors.IsNotFound(err) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("failed to lookup RuntimeClass %s: %w", *name, err)
	}
	return rc.Handler, nil
}
