package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		checks   []Check
		wantCode int
		wantBody string
	}{
		{"no checks", nil, http.StatusOK, "ok"},
		{"passing", []Check{{Name: "ping", Check: func() error { return nil }}}, http.StatusOK, "ok"},
		{"failing", []Check{
			{Name: "ping", Check: func() error { return nil }},
			{Name: "runtime", Check: func() error { return errors.New("down") }},
		}, http.StatusInternalServerError, "[-]runtime failed: down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			New(Config{}, tc.checks...).healthz().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
}

// TestHealthzBothPorts: the TLS API's /healthz and the plain healthz port
// answer from the same checks, with the reasons in the body.
func TestHealthzBothPorts(t *testing.T) {
	healthy := true
	s := New(Config{}, Check{Name: "ping", Check: func() error { return nil }},
		Check{Name: "pleg", Check: func() error {
			if healthy {
				return nil
			}
			return errors.New("pleg was last seen active 3m1s ago; threshold is 3m0s")
		}})
	for name, mux := range map[string]http.Handler{"api": s.apiMux(), "plain": s.healthzMux()} {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				healthy  bool
				wantCode int
				wantBody string
			}{
				{true, http.StatusOK, "ok"},
				{false, http.StatusInternalServerError, "[-]pleg failed: pleg was last seen active 3m1s ago; threshold is 3m0s\nhealthz check failed\n"},
			} {
				healthy = tc.healthy
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
				if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
					t.Errorf("healthy=%v: got %d %q, want %d %q", tc.healthy, rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
				}
			}
		})
	}
}
