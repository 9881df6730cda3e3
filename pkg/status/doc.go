// Package status computes pod and container statuses (ephemeral container
// statuses above all) from the pod's observed runtime state, and sends them
// to the API server.
//
// Compute is a pure function of the pod, its podstate.PodState, the Waiting
// reasons of containers that did not start, the node's addresses and the
// time: phase, conditions, addresses and one status per container of the
// spec, with the kubelet's reasons. It reads the init-done and sidecar
// rules from package podstate, as the sync loop's plan does, so the status
// never says what the plan does not do.
//
// Manager sends them. Statuses are coalesced per pod: only the newest one
// is kept and sent, so intermediate ones may be skipped, never the last. Each
// is a strategic-merge patch of pods/status from the status the agent's
// cache holds, carrying the pod's UID as a precondition, so a status never
// lands on a pod that replaced the one it describes. A failed patch is
// retried with backoff until it lands or the pod is gone; a status equal to
// the cached one is not sent.
//
// It does not decide what runs (package kuberuntime) and does not read the
// runtime itself (podstate.Observer does).
package status
