package main

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/cm"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/streaming"
)

// debugControl is what the sync loop's debug control needs from run: the
// policy (nil: none), the session tracker and the audit log.
type debugControl struct {
	policy   *debugpolicy.Source
	sessions *streaming.Activity
	audit    *streaming.Auditor
}

// debugPolicy decides with the policy in force and the labels of the pod's
// namespace, from an informer on all Namespaces. The node needs RBAC to
// list and watch them (the Node authorizer grants none; see
// docs/debug-control.md); until the cache is filled, debug containers wait
// with a message saying so rather than run under a guess.
type debugPolicy struct {
	source     *debugpolicy.Source
	namespaces corelisters.NamespaceLister
	synced     cache.InformerSynced
}

// newDebugPolicy returns the policy of source and the Namespace informer
// factory it reads, for run to start; both nil without a policy.
func newDebugPolicy(client kubernetes.Interface, source *debugpolicy.Source) (*debugPolicy, informers.SharedInformerFactory) {
	if source == nil {
		return nil, nil
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ns := factory.Core().V1().Namespaces()
	return &debugPolicy{source: source, namespaces: ns.Lister(), synced: ns.Informer().HasSynced}, factory
}

// errNamespacesUnknown says the Namespace cache is not filled yet.
var errNamespacesUnknown = errors.New("the namespaces' labels are not known yet (the node must be allowed to list and watch namespaces; see docs/debug-control.md)")

// Decide implements kuberuntime.DebugPolicy.
func (d *debugPolicy) Decide(_ context.Context, pod *v1.Pod, ec *v1.EphemeralContainer) (debugpolicy.Decision, error) {
	p := d.source.Policy()
	if p == nil {
		return debugpolicy.Decision{Allowed: true}, nil
	}
	if !d.synced() {
		return debugpolicy.Decision{}, errNamespacesUnknown
	}
	ns, err := d.namespaces.Get(pod.Namespace)
	if err != nil {
		return debugpolicy.Decision{}, fmt.Errorf("namespace %s: %w", pod.Namespace, err)
	}
	return debugpolicy.Decide(p, ns.Labels, pod, ec), nil
}

// containerPids caps a container's processes through its init process's
// cgroup, which the runtime's verbose status names.
type containerPids struct {
	runtime interface {
		ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	}
}

// LimitContainerPids implements kuberuntime.ContainerPids.
func (c containerPids) LimitContainerPids(ctx context.Context, containerID string, limit int64) error {
	st, err := c.runtime.ContainerStatus(ctx, containerID, true)
	if err != nil {
		return fmt.Errorf("container status: %w", err)
	}
	pid, err := criconfig.VerbosePID(st.GetInfo())
	if err != nil {
		return fmt.Errorf("container %s: %w", containerID, err)
	}
	return cm.LimitProcessPids(pid, limit)
}
