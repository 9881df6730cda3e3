// Package admission decides, as the kubelet's admission does, whether this
// node runs a pod bound to it. A pod it cannot run (another OS, a node
// selector or affinity the node does not match, more resources than the
// node has left, a host port already taken, an untolerated NoExecute
// taint, a volume kind the agent cannot set up) fails at once, with the
// kubelet's reason and message, instead of waiting forever.
//
// Admit is the decision: a pure function of the pod, the node and the pods
// admitted before it, so every rule is a table test. Gate keeps those
// admitted pods: it admits each pod once, in creation order, as the
// kubelet's HandlePodAdditions does, and gives the same answer ever after.
// An admitted pod is never rejected later; a rejected pod is never run.
//
// The reasons are the kubelet's (lifecycle.predicateAdmitHandler):
// PodOSSelectorNodeLabelDoesNotMatch, PodOSNotSupported,
// SupplementalGroupsPolicyNotSupported, OutOfcpu, OutOfmemory,
// OutOfephemeral-storage, OutOfpods (OutOf<resource> for others),
// NodeAffinity, NodeName, NodePorts, TaintToleration. One is the agent's
// own, for which the kubelet has no admission check: UnsupportedVolume, for
// a volume kind the agent's volume manager cannot set up (a pvc, csi, nfs
// volume...), which the kubelet would wait for in ContainerCreating.
//
// What the package does not do: the kubelet's other admit handlers
// (eviction under memory pressure, sysctls, AppArmor, topology manager,
// node shutdown) and critical pod preemption are not implemented.
package admission
