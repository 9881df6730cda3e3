package server

import (
	"encoding/json"
	"net/http"

	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
)

// DebugPolicyPath is the read-only route that serves the node's debug
// policy in force (a debugpolicy.Snapshot as JSON). Like every path the
// kubelet has no narrower subresource for, it is authorized as get on
// nodes/proxy; through the API server it is
// /api/v1/nodes/NODE/proxy/debugpolicy.
const DebugPolicyPath = "/debugpolicy"

// DebugPolicy supplies the debug policy in force, for /debugpolicy
// (*debugpolicy.Source satisfies it).
type DebugPolicy interface {
	Snapshot() debugpolicy.Snapshot
}

// debugPolicyHandler serves /debugpolicy. A nil src is a node without a
// policy: an empty snapshot, which allows every debug container as the
// kubelet does.
func debugPolicyHandler(src DebugPolicy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var snap debugpolicy.Snapshot
		if src != nil {
			snap = src.Snapshot()
		}
		data, err := json.Marshal(snap)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write(data); err != nil {
			klog.FromContext(r.Context()).V(4).Info("Failed to write debug policy", "err", err)
		}
	})
}
