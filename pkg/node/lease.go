package node

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
)

// LeaseNamespace holds one Lease per node, named after the node; the node
// lifecycle controller reads them as heartbeats.
const LeaseNamespace = v1.NamespaceNodeLease

// newLeaseController renews the node's Lease every quarter of its duration,
// as the kubelet does, so that two missed renewals still leave the node
// alive in the controller's eyes.
func (c *Controller) newLeaseController(ctx context.Context) lease.Controller {
	logger := klog.FromContext(ctx)
	return lease.NewController(c.clock, c.client, c.cfg.NodeName,
		int32(c.cfg.LeaseDuration/time.Second),
		func() { logger.Info("Failed to renew the node lease several times in a row") },
		c.cfg.LeaseDuration/4,
		c.cfg.NodeName, LeaseNamespace,
		setNodeOwner(ctx, c.client, c.cfg.NodeName))
}

// setNodeOwner makes the Node own its Lease, so that deleting the Node
// garbage-collects the Lease.
func setNodeOwner(ctx context.Context, client kubernetes.Interface, nodeName string) func(*coordinationv1.Lease) error {
	return func(l *coordinationv1.Lease) error {
		if len(l.OwnerReferences) > 0 {
			return nil
		}
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s to own its lease: %w", nodeName, err)
		}
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1",
			Kind:       "Node",
			Name:       nodeName,
			UID:        node.UID,
		}}
		return nil
	}
}
