package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2/ktesting"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type fakeSummary struct {
	err  error
	only []bool
}

func (f *fakeSummary) Summary(_ context.Context, only bool) (*statsapi.Summary, error) {
	f.only = append(f.only, only)
	if f.err != nil {
		return nil, f.err
	}
	return &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "node-1"}, Pods: []statsapi.PodStats{}}, nil
}

func TestStatsRoutes(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		anonymous    bool
		err          error
		wantCode     int
		wantBody     string
		wantOnly     []bool
	}{
		{"GET", "/stats/summary", true, nil, http.StatusUnauthorized, "Unauthorized", nil},
		{"GET", "/metrics/resource", true, nil, http.StatusUnauthorized, "Unauthorized", nil},
		{"GET", "/stats/summary", false, nil, http.StatusOK, `"nodeName":"node-1"`, []bool{false}},
		{"GET", "/stats/summary?only_cpu_and_memory=true", false, nil, http.StatusOK, `"pods":[]`, []bool{true}},
		{"GET", "/stats/summary?only_cpu_and_memory=maybe", false, nil, http.StatusBadRequest, "only_cpu_and_memory", nil},
		{"GET", "/stats/summary", false, errors.New("runtime down"), http.StatusInternalServerError, "runtime down", []bool{false}},
		{"POST", "/stats/summary", false, nil, http.StatusMethodNotAllowed, "", nil},
		{"GET", "/stats/container", false, nil, http.StatusNotFound, "", nil},
		{"GET", "/metrics/resource", false, nil, http.StatusOK, "resource_test 1", nil},
		{"GET", "/metrics", false, nil, http.StatusOK, "general_test 2", nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			general, resource := prometheus.NewRegistry(), prometheus.NewRegistry()
			general.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "general_test", Help: "h"}, func() float64 { return 2 }))
			resource.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "resource_test", Help: "h"}, func() float64 { return 1 }))
			fs := &fakeSummary{err: tc.err}
			s := New(Config{Auth: userGate, Gatherer: general, Stats: fs, ResourceMetrics: resource})
			_, ctx := ktesting.NewTestContext(t)
			r := httptest.NewRequest(tc.method, tc.path, nil).WithContext(ctx)
			if !tc.anonymous {
				r.Header.Set("X-User", "alice")
			}
			rec := httptest.NewRecorder()
			s.cfg.Auth(s.apiMux()).ServeHTTP(rec, r)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if len(fs.only) != len(tc.wantOnly) || (len(fs.only) == 1 && fs.only[0] != tc.wantOnly[0]) {
				t.Errorf("summaries asked (only CPU and memory) = %v, want %v", fs.only, tc.wantOnly)
			}
			if rec.Code == http.StatusOK && strings.HasPrefix(tc.path, "/stats/") {
				var got statsapi.Summary
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Header().Get("Content-Type") != "application/json" {
					t.Errorf("body is no JSON summary (%v, %s)", err, rec.Header().Get("Content-Type"))
				}
			}
		})
	}
}
