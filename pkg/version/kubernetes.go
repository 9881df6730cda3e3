package version

// Kubernetes is the Kubernetes version whose node behaviour the agent
// implements: that of the k8s.io/* libraries it is built with (k8s.io/api
// v0.37.2 is Kubernetes v1.37.2). It is reported as the Node's
// status.nodeInfo.kubeletVersion, because version-skew tooling (kubeadm,
// kubectl version checks, cluster autoscalers, upgrade planners) reads that
// field as "the kubelet API this node speaks" and would misjudge the agent's
// own v0.x version as a kubelet far older than the control plane. The agent's
// own version is reported in the Node annotation
// ephemeral-agent.io/version instead.
//
// It is a constant, not read from the build information, so that it holds in
// every build (go run, tests, stripped binaries); TestKubernetesMatchesGoMod
// keeps it equal to the k8s.io/api version in go.mod.
const Kubernetes = "v1.37.2"
