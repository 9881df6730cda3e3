package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2/ktesting"
)

// byHeader authenticates the user named in the X-Test-User header.
var byHeader = authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
	switch name := r.Header.Get("X-Test-User"); name {
	case "":
		return nil, false, nil
	case "broken":
		return nil, false, errors.New("certificate signed by unknown authority")
	default:
		return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
	}
})

// rules allows alice nodes/proxy, bob only nodes/pods, and fails for carol.
var rules = authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	switch a.GetUser().GetName() {
	case "alice":
		if a.GetSubresource() == "proxy" {
			return authorizer.DecisionAllow, "", nil
		}
	case "bob":
		if a.GetSubresource() == "pods" {
			return authorizer.DecisionAllow, "", nil
		}
	case "carol":
		return authorizer.DecisionNoOpinion, "", errors.New("webhook unreachable")
	}
	return authorizer.DecisionNoOpinion, "", nil
})

func TestWrap(t *testing.T) {
	g := &Guard{nodeName: "node-1", authn: byHeader, authz: rules}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := genericapirequest.UserFrom(r.Context())
		if !ok {
			t.Error("no user in the context")
			return
		}
		_, _ = w.Write([]byte("hello " + u.GetName()))
	}))
	for _, tc := range []struct {
		name, user, method, path string
		wantCode                 int
		wantBody                 string
	}{
		{"no credentials", "", "POST", "/exec/ns/web/app", http.StatusUnauthorized, "Unauthorized"},
		{"bad credentials", "broken", "GET", "/healthz", http.StatusUnauthorized, "Unauthorized"},
		{"allowed", "alice", "POST", "/exec/ns/web/app", http.StatusOK, "hello alice"},
		{"allowed by the fallback", "alice", "GET", "/pods", http.StatusOK, "hello alice"},
		{"allowed by the fine-grained subresource", "bob", "GET", "/runningpods/", http.StatusOK, "hello bob"},
		{"forbidden", "bob", "POST", "/exec/ns/web/app", http.StatusForbidden,
			"Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])\n"},
		{"forbidden on every subresource", "dave", "GET", "/healthz", http.StatusForbidden,
			"Forbidden (user=dave, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n"},
		{"authorization error", "carol", "GET", "/metrics", http.StatusInternalServerError,
			"Authorization error (user=carol, verb=get, resource=nodes, subresource=metrics)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			r := httptest.NewRequest(tc.method, tc.path, nil).WithContext(ctx)
			if tc.user != "" {
				r.Header.Set("X-Test-User", tc.user)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
}

// refusal is one call of a RefusalRecorder.
type refusal struct {
	path, user string
	status     int
	reason     string
}

type refusalLog struct{ got []refusal }

func (l *refusalLog) RecordRefusal(_ context.Context, r *http.Request, u user.Info, status int, reason string) {
	name := "<nil>"
	if u != nil {
		name = u.GetName()
	}
	l.got = append(l.got, refusal{r.URL.Path, name, status, reason})
}

func TestWrapReportsRefusals(t *testing.T) {
	log := &refusalLog{}
	g := &Guard{nodeName: "node-1", authn: byHeader, authz: rules, refusals: log}
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tc := range []struct{ user, path string }{
		{"", "/exec/ns/web/app"},
		{"broken", "/attach/ns/web/app"},
		{"alice", "/exec/ns/web/app"},
		{"bob", "/portForward/ns/web"},
		{"carol", "/exec/ns/web/app"},
	} {
		_, ctx := ktesting.NewTestContext(t)
		r := httptest.NewRequest("POST", tc.path, nil).WithContext(ctx)
		if tc.user != "" {
			r.Header.Set("X-Test-User", tc.user)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	want := []refusal{
		{"/exec/ns/web/app", "<nil>", http.StatusUnauthorized, "Unauthorized"},
		{"/attach/ns/web/app", "<nil>", http.StatusUnauthorized, "Unauthorized: certificate signed by unknown authority"},
		{"/portForward/ns/web", "bob", http.StatusForbidden, "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])"},
		{"/exec/ns/web/app", "carol", http.StatusInternalServerError,
			"Authorization error (user=carol, verb=create, resource=nodes, subresource=proxy): webhook unreachable"},
	}
	if len(log.got) != len(want) {
		t.Fatalf("refusals = %+v, want %+v", log.got, want)
	}
	for i := range want {
		if log.got[i] != want[i] {
			t.Errorf("refusal %d = %+v, want %+v", i, log.got[i], want[i])
		}
	}
}
