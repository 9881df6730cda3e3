// Package node makes the agent a node of the cluster: it registers the Node
// object, keeps its status (Ready above all) true to the container runtime's
// health, and renews the node's Lease in kube-node-lease so the control plane
// sees the node alive.
//
// It follows the kubelet's conventions, because cluster tools read them: the
// same labels, condition types, reasons and messages, the same lease name and
// owner reference, and status patches sent only when something changed or
// when the report interval has passed.
//
// It does not run pods; that is package kuberuntime's work.
package node
