// Package podstate is the observed half of a pod: what the CRI runtime
// holds for it (PodState, its Sandboxes and Containers), how it is read
// (Observer), and the pod rules that both the sync loop's plan and the
// reported status depend on: which instance of a container is current,
// whether a container is a sidecar, whether the init containers are done.
//
// It is a leaf: it imports criconfig for the labels that tie runtime
// objects to pods, and neither kuberuntime nor status, which both build on
// it. Keeping the rules here is what makes the plan and the status agree:
// a rule changed once changes for both.
//
// Lookup answers which container a request for logs or a debug session
// means; packages logs and streaming adapt it to their interfaces.
//
// It does not decide anything (package kuberuntime plans and acts) and does
// not talk to the API server (package status does).
package podstate
