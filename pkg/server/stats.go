package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// SummaryProvider computes the Summary API's answer (package stats'
// Provider is one).
type SummaryProvider interface {
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error)
}

// summaryHandler serves GET /stats/summary as the kubelet does: the whole
// summary, or with ?only_cpu_and_memory=true the node's and pods' CPU and
// memory only, as JSON.
func summaryHandler(p SummaryProvider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		only := false
		if v := r.URL.Query().Get("only_cpu_and_memory"); v != "" {
			var err error
			if only, err = strconv.ParseBool(v); err != nil {
				http.Error(w, "invalid only_cpu_and_memory: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		s, err := p.Summary(r.Context(), only)
		if err != nil {
			klog.FromContext(r.Context()).Error(err, "Failed to compute the stats summary")
			http.Error(w, "Internal Error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(s); err != nil {
			klog.FromContext(r.Context()).V(4).Info("Failed to write the stats summary", "err", err)
		}
	})
}
