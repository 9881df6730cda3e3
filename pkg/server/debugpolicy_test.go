package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
)

type fixedPolicy debugpolicy.Snapshot

func (f fixedPolicy) Snapshot() debugpolicy.Snapshot { return debugpolicy.Snapshot(f) }

func TestDebugPolicyHandler(t *testing.T) {
	loaded := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	withPolicy := debugpolicy.Snapshot{
		Path:       "/etc/ephemeral-agent/debug-policy.yaml",
		Policy:     &debugpolicy.DebugPolicy{Rules: []debugpolicy.Rule{{Name: "prod", Images: []string{"busybox"}}}},
		LoadedAt:   loaded,
		Generation: 2,
		LastError:  "rule 0: name is required",
	}
	var nilSource *debugpolicy.Source
	for _, tc := range []struct {
		name string
		src  DebugPolicy
		want debugpolicy.Snapshot
	}{
		{"no policy configured", nil, debugpolicy.Snapshot{}},
		// A nil *Source in the interface is a node without a policy too.
		{"nil source", nilSource, debugpolicy.Snapshot{}},
		{"policy in force", fixedPolicy(withPolicy), withPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			rec := httptest.NewRecorder()
			debugPolicyHandler(tc.src).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, DebugPolicyPath, nil).WithContext(ctx))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			var got debugpolicy.Snapshot
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", rec.Body.String(), err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("snapshot = %+v, want %+v", got, tc.want)
			}
		})
	}
}
