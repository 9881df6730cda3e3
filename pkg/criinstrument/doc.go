// Package criinstrument counts and times the agent's CRI calls with the
// kubelet's runtime operation metrics (kubelet_runtime_operations_total,
// kubelet_runtime_operations_errors_total and
// kubelet_runtime_operations_duration_seconds, by operation_type), so that
// dashboards made for the kubelet read the agent too and a benchmark can
// compare the two call for call.
//
// It wraps the k8s.io/cri-api service interfaces; it neither retries nor
// logs, and a call's result passes through unchanged.
package criinstrument
