package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// The kubelet's admission reasons (pkg/kubelet/lifecycle/predicate.go and
// the scheduler plugins' names), and the agent's own ReasonUnsupportedVolume.
const (
	ReasonOSSelectorMismatch             = "PodOSSelectorNodeLabelDoesNotMatch"
	ReasonOSNotSupported                 = "PodOSNotSupported"
	ReasonSupplementalGroupsNotSupported = "SupplementalGroupsPolicyNotSupported"
	ReasonNodeAffinity                   = "NodeAffinity"
	ReasonNodeName                       = "NodeName"
	ReasonNodePorts                      = "NodePorts"
	ReasonTaintToleration                = "TaintToleration"
	// ReasonOutOfPrefix prefixes the reason of a resource the node has too
	// little of: OutOfcpu, OutOfmemory, OutOfephemeral-storage, OutOfpods.
	ReasonOutOfPrefix = "OutOf"
	// ReasonUnsupportedVolume is the agent's reason for a pod with a volume
	// whose kind it cannot set up. The kubelet has none: its volume manager
	// knows every in-tree kind and waits for the others' drivers.
	ReasonUnsupportedVolume = "UnsupportedVolume"
)

// The scheduler plugins' failure descriptions the kubelet puts in its
// messages ("Predicate NodeAffinity failed: node(s) didn't match ...").
const (
	descNodeAffinity = "node(s) didn't match Pod's node affinity/selector"
	descNodeName     = "node(s) didn't match the requested node name"
	descNodePorts    = "node(s) didn't have free ports for the requested pod ports"
	descTaints       = "node(s) had taints that the pod didn't tolerate"
)

// Input is what a decision reads.
type Input struct {
	// Pod is the pod to decide on.
	Pod *v1.Pod
	// Node is the node as the API holds it (labels, taints, allocatable,
	// features). A nil Node is an empty one: it has no allocatable, so
	// every pod is rejected OutOfpods.
	Node *v1.Node
	// Admitted are the pods this node admitted before Pod and that have
	// not ended: their requests and host ports are taken.
	Admitted []*v1.Pod
	// OS is the node's operating system, runtime.GOOS.
	OS string
	// Volume says why a volume cannot be set up on this node, or nil when
	// it can (volume.Supported). Nil: every volume can.
	Volume func(*v1.Volume) error
}

// Result is a decision. Reason and Message are empty when the pod is
// admitted; otherwise they are the rejected pod's status reason and Event,
// the message without the status's "Pod was rejected: " prefix.
type Result struct {
	Admit   bool
	Reason  string
	Message string
}

// Admit decides whether the node runs in.Pod, in the kubelet's order: the
// checks preemption could not help first (OS label, OS field,
// supplementalGroupsPolicy), then resources, node affinity, node name and
// host ports (the first failure only, as the kubelet reports), then
// NoExecute taints, then the agent's own volume check. ctx carries only the
// logger.
func Admit(ctx context.Context, in Input) Result {
	pod, node := in.Pod, in.Node
	if node == nil {
		node = &v1.Node{}
	}
	if osSelectorMismatch(pod, in.OS) {
		return reject(ReasonOSSelectorMismatch, "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label")
	}
	if pod.Spec.OS != nil && string(pod.Spec.OS.Name) != in.OS {
		return reject(ReasonOSNotSupported, "Failed to admit pod as the OS field doesn't match node OS")
	}
	if strictGroupsUnsupported(pod, node) {
		return reject(ReasonSupplementalGroupsNotSupported, fmt.Sprintf("SupplementalGroupsPolicy=%s is not supported in this node", v1.SupplementalGroupsPolicyStrict))
	}
	if r, ok := checkResources(pod, node, in.Admitted); !ok {
		return r
	}
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return predicateFailed(ReasonNodeAffinity, descNodeAffinity)
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		return predicateFailed(ReasonNodeName, descNodeName)
	}
	if portsConflict(pod, in.Admitted) {
		return predicateFailed(ReasonNodePorts, descNodePorts)
	}
	// The kubelet only cares for NoExecute taints: NoSchedule ones are the
	// scheduler's, and a pod bound by name is meant to bypass them.
	noExecute := func(t *v1.Taint) bool { return t.Effect == v1.TaintEffectNoExecute }
	if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.FromContext(ctx), node.Spec.Taints, pod.Spec.Tolerations, noExecute, false); untolerated {
		return predicateFailed(ReasonTaintToleration, descTaints)
	}
	if in.Volume != nil {
		for i := range pod.Spec.Volumes {
			if err := in.Volume(&pod.Spec.Volumes[i]); err != nil {
				return reject(ReasonUnsupportedVolume, fmt.Sprintf("Volume %q cannot be set up on this node: %v", pod.Spec.Volumes[i].Name, err))
			}
		}
	}
	return Result{Admit: true}
}

func reject(reason, message string) Result {
	return Result{Reason: reason, Message: message}
}

// predicateFailed words a failed scheduler predicate as the kubelet's
// PredicateFailureError.
func predicateFailed(name, desc string) Result {
	return reject(name, fmt.Sprintf("Predicate %s failed: %s", name, desc))
}

// osSelectorMismatch is the kubelet's check of the pod's kubernetes.io/os
// label (its label: a node selector on it is node affinity's business)
// against the node's label. The kubelet takes the node's label to be the
// node's OS when it is missing or says another (the node's status sync
// corrects it), so the pod's label is compared with the OS itself.
func osSelectorMismatch(pod *v1.Pod, goos string) bool {
	want, ok := pod.Labels[v1.LabelOSStable]
	return ok && want != goos
}

// strictGroupsUnsupported reports a pod that asks for the Strict
// supplementalGroupsPolicy on a node whose status does not say it supports
// it (the runtime must report the feature).
func strictGroupsUnsupported(pod *v1.Pod, node *v1.Node) bool {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.SupplementalGroupsPolicy == nil || *sc.SupplementalGroupsPolicy != v1.SupplementalGroupsPolicyStrict {
		return false
	}
	f := node.Status.Features
	return f == nil || f.SupplementalGroupsPolicy == nil || !*f.SupplementalGroupsPolicy
}

// checkResources is the scheduler's NodeResourcesFit as the kubelet runs
// it: the pod count first, then cpu, memory, ephemeral-storage and the
// other resources, each the pod requests against the node's allocatable
// minus what the admitted pods request. The first failure is the reason.
// Extended resources the node does not have are not checked, as the
// kubelet's removeMissingExtendedResources.
func checkResources(pod *v1.Pod, node *v1.Node, admitted []*v1.Pod) (Result, bool) {
	alloc := node.Status.Allocatable
	if maxPods := alloc.Pods().Value(); int64(len(admitted))+1 > maxPods {
		return outOf(v1.ResourcePods, 1, int64(len(admitted)), maxPods), false
	}
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	used := v1.ResourceList{}
	for _, p := range admitted {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	names := []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage}
	var others []v1.ResourceName
	for name := range want {
		if !slices.Contains(names, name) && name != v1.ResourcePods {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range append(names, others...) {
		q, ok := want[name]
		if !ok || q.Sign() <= 0 {
			continue
		}
		if _, has := alloc[name]; !has && isExtended(name) {
			continue
		}
		req, use, capacity := amount(name, q), amount(name, used[name]), amount(name, alloc[name])
		if req > capacity-use {
			return outOf(name, req, use, capacity), false
		}
	}
	return Result{}, true
}

// amount is a quantity in the unit of the kubelet's messages: millicores
// for cpu, plain numbers (bytes, counts) for the rest.
func amount(name v1.ResourceName, q resource.Quantity) int64 {
	if name == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// isExtended reports an extended resource: one outside the kubernetes.io
// namespace (a device plugin's vendor.com/gpu), as the API's helper.
func isExtended(name v1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, v1.ResourceDefaultNamespacePrefix) && !strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix)
}

// outOf is the kubelet's rejection for a resource the node lacks, worded
// as its InsufficientResourceError.
func outOf(name v1.ResourceName, requested, used, capacity int64) Result {
	return reject(ReasonOutOfPrefix+string(name), fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", name, requested, used, capacity))
}
