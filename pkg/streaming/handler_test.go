package streaming

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"k8s.io/klog/v2/ktesting"
)

// upgradeRequest is a request that asks for an upgrade, as every session
// request does; the handler refuses others.
func upgradeRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	r := httptest.NewRequest(method, target, nil).WithContext(ctx)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "SPDY/3.1")
	return r
}

// TestRouting checks which paths and methods reach a session, and what
// they ask the pod manager for. Targets are refused before the runtime
// is called (the container is not running), so no stream is needed.
func TestRouting(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, target string
		wantCode       int
		wantCall       string
	}{
		{"GET", "/exec/ns/web/done?command=ls&output=1", http.StatusBadRequest, "ns|web||done"},
		{"POST", "/exec/ns/web/done?command=ls&output=1", http.StatusBadRequest, "ns|web||done"},
		{"POST", "/exec/ns/web/web-uid/done?command=ls&output=1", http.StatusBadRequest, "ns|web|web-uid|done"},
		{"GET", "/attach/ns/web/done?output=1", http.StatusBadRequest, "ns|web||done"},
		{"POST", "/attach/ns/web/web-uid/done?output=1", http.StatusBadRequest, "ns|web|web-uid|done"},
		{"POST", "/exec/ns/web/other-uid/done?command=ls&output=1", http.StatusNotFound, "ns|web|other-uid|done"},
		{"PUT", "/exec/ns/web/done?command=ls&output=1", http.StatusMethodNotAllowed, ""},
		{"DELETE", "/portForward/ns/web", http.StatusMethodNotAllowed, ""},
		{"POST", "/exec/ns/web", http.StatusNotFound, ""},
		{"POST", "/exec/ns/web/a/b/c", http.StatusNotFound, ""},
		{"POST", "/attach/ns", http.StatusNotFound, ""},
		{"POST", "/portForward/ns/web/uid/extra", http.StatusNotFound, ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			e.pods.calls = nil
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, upgradeRequest(t, tc.method, tc.target))
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d (%s), want %d", rec.Code, rec.Body.String(), tc.wantCode)
			}
			if got := e.pods.lastCall(); got != tc.wantCall {
				t.Errorf("resolved %q, want %q", got, tc.wantCall)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.runtime.errs["Attach"] = grpcstatus.Error(codes.NotFound, "container gone")
	e.runtime.errs["PortForward"] = grpcstatus.Error(codes.ResourceExhausted, "maximum number of in-flight requests exceeded")
	for _, tc := range []struct {
		name, target string
		plain        bool
		wantCode     int
		wantBody     string
	}{
		{"unknown pod", "/exec/ns/nope/app?command=ls&output=1", false, http.StatusNotFound, `pod "nope" does not exist`},
		{"unknown container", "/exec/ns/web/ghost?command=ls&output=1", false, http.StatusNotFound, `container "ghost" not found in pod "web"`},
		{"exited container", "/exec/ns/web/done?command=ls&output=1", false, http.StatusBadRequest, `container "done" in pod "web" is not running`},
		{"container never started", "/attach/ns/web/waiting?output=1", false, http.StatusBadRequest, `container "waiting" in pod "web" is waiting to start`},
		{"no command", "/exec/ns/web/app?output=1", false, http.StatusBadRequest, "at least one command"},
		{"no stream", "/exec/ns/web/app?command=ls", false, http.StatusBadRequest, "at least 1 of stdin, stdout, stderr"},
		{"bad port", "/portForward/ns/web?port=x", false, http.StatusBadRequest, `unable to parse "x" as a port`},
		{"not an upgrade", "/exec/ns/web/app?command=ls&output=1", true, http.StatusBadRequest, "Upgrade request required"},
		{"runtime NotFound", "/attach/ns/web/app?output=1", false, http.StatusNotFound, `unable to attach to container "app"`},
		{"runtime busy", "/portForward/ns/web?port=80", false, http.StatusTooManyRequests, "in-flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := upgradeRequest(t, "POST", tc.target)
			if tc.plain {
				r.Header.Del("Upgrade")
				r.Header.Del("Connection")
			}
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}

	// Every refusal is audited, with the status and the reason.
	recs := e.audit.records(t)
	if len(recs) != 10 {
		t.Fatalf("%d audit records, want 10", len(recs))
	}
	last := recs[len(recs)-1]
	if last.Kind != KindPortForward || last.Status != http.StatusTooManyRequests || !strings.Contains(last.Error, "in-flight") ||
		last.PodUID != "web-uid" || len(last.Ports) != 1 || last.Ports[0] != 80 {
		t.Errorf("last record = %+v", last)
	}
}

func TestResolveFailureUnknownError(t *testing.T) {
	e := newEnv(t)
	e.pods.err = grpcstatus.Error(codes.Unavailable, "runtime down")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, upgradeRequest(t, "POST", "/exec/ns/web/app?command=ls&output=1"))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "runtime down") {
		t.Errorf("got %d %q, want 500 naming the failure", rec.Code, rec.Body.String())
	}
}
