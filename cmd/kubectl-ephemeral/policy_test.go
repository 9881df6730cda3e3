package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
)

func TestNodePolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/nodes/n1/proxy/debugpolicy":
			fmt.Fprint(w, `{"path":"/etc/p.yaml","policy":{"apiVersion":"debug.ephemeral-agent.io/v1alpha1","kind":"DebugPolicy","rules":[{"name":"prod"}]},"generation":3}`)
		case "/api/v1/nodes/n2/proxy/debugpolicy":
			fmt.Fprint(w, `{}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		}
	}))
	defer srv.Close()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snap, err := nodePolicy(ctx, c, "n1")
	if err != nil || snap.Path != "/etc/p.yaml" || snap.Generation != 3 || snap.Policy == nil || snap.Policy.Rules[0].Name != "prod" {
		t.Errorf("n1: %+v, %v", snap, err)
	}
	if snap, err := nodePolicy(ctx, c, "n2"); err != nil || snap.Policy != nil {
		t.Errorf("n2: %+v, %v", snap, err)
	}
	if _, err := nodePolicy(ctx, c, "kubelet"); err == nil || !strings.Contains(err.Error(), "serves no /debugpolicy") {
		t.Errorf("kubelet: %v", err)
	}
}

func TestPrintPolicy(t *testing.T) {
	loaded := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	policy := &debugpolicy.DebugPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: debugpolicy.APIVersion, Kind: debugpolicy.Kind},
		Rules:    []debugpolicy.Rule{{Name: "prod", Images: []string{"busybox"}}},
	}
	for _, tc := range []struct {
		name             string
		snap             debugpolicy.Snapshot
		wantOut, wantErr string
	}{
		{"none", debugpolicy.Snapshot{}, "node n1: no policy (--debug-policy-config unset): every debug container is allowed\n", ""},
		{"in force", debugpolicy.Snapshot{Path: "/etc/p.yaml", Policy: policy, LoadedAt: loaded, Generation: 1},
			`generation: 1
loadedAt: "2026-12-05T20:00:00Z"
node: n1
path: /etc/p.yaml
policy:
  apiVersion: debug.ephemeral-agent.io/v1alpha1
  kind: DebugPolicy
  rules:
  - images:
    - busybox
    name: prod
`, ""},
		{"file refused", debugpolicy.Snapshot{Path: "/etc/p.yaml", Policy: policy, LoadedAt: loaded, Generation: 1, LastError: "rule 0: bad", LastErrorAt: loaded.Add(time.Minute)},
			"lastError: 'rule 0: bad'\n",
			"Warning: node n1 refused the policy file now at /etc/p.yaml (rule 0: bad); the policy below, loaded 2026-12-05T20:00:00Z, stays in force\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := printPolicy(&out, &errOut, "n1", tc.snap); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.wantOut) || errOut.String() != tc.wantErr {
				t.Errorf("out:\n%s\nerr:\n%s\nwant out containing:\n%s\nerr:\n%s", out.String(), errOut.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestPickNode(t *testing.T) {
	ctx := context.Background()
	node := func(name string) *v1.Node { return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	if n, err := onlyNode(ctx, fake.NewClientset(node("n1"))); n != "n1" || err != nil {
		t.Errorf("one node: %q, %v", n, err)
	}
	if _, err := onlyNode(ctx, fake.NewClientset(node("n1"), node("n2"))); err == nil || !strings.Contains(err.Error(), "2 nodes (n1, n2): name one") {
		t.Errorf("two nodes: %v", err)
	}
	if _, err := onlyNode(ctx, fake.NewClientset()); err == nil {
		t.Error("no nodes: no error")
	}
	c := fake.NewClientset(debugPod("ns", "web", "n2", nil), debugPod("ns", "pending", "", nil))
	if n, err := podNode(ctx, c, "ns", "web"); n != "n2" || err != nil {
		t.Errorf("pod's node: %q, %v", n, err)
	}
	if _, err := podNode(ctx, c, "ns", "pending"); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Errorf("unbound pod: %v", err)
	}
}
