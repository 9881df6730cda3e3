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
