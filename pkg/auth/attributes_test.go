package auth

import (
	"net/http/httptest"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	for _, tc := range []struct {
		method, path string
		verb         string
		subresources []string
	}{
		{"POST", "/exec/ns/web/app", "create", []string{"proxy"}},
		{"GET", "/exec/ns/web/uid/app", "get", []string{"proxy"}},
		{"POST", "/attach/ns/web/app", "create", []string{"proxy"}},
		{"POST", "/portForward/ns/web", "create", []string{"proxy"}},
		{"GET", "/containerLogs/ns/web/app", "get", []string{"proxy"}},
		// The agent's own read-only route: nodes/proxy, as any path the
		// kubelet has no narrower subresource for.
		{"GET", "/debugpolicy", "get", []string{"proxy"}},
		{"GET", "/pods", "get", []string{"pods", "proxy"}},
		{"GET", "/pods/", "get", []string{"pods", "proxy"}},
		{"GET", "/runningpods/", "get", []string{"pods", "proxy"}},
		{"GET", "/healthz", "get", []string{"healthz", "proxy"}},
		{"GET", "/healthz/ping", "get", []string{"healthz", "proxy"}},
		{"GET", "/configz", "get", []string{"configz", "proxy"}},
		{"GET", "/metrics", "get", []string{"metrics"}},
		{"GET", "/metrics/cadvisor", "get", []string{"metrics"}},
		{"GET", "/metrics/resource", "get", []string{"metrics"}},
		{"GET", "/stats/summary", "get", []string{"stats"}},
		{"GET", "/stats", "get", []string{"stats"}},
		{"GET", "/logs/syslog", "get", []string{"log"}},
		{"GET", "/spec/", "get", []string{"spec"}},
		{"POST", "/checkpoint/ns/web/app", "create", []string{"checkpoint"}},
		{"GET", "/statusz", "get", []string{"statusz"}},
		{"GET", "/flagz", "get", []string{"configz"}},
		// Prefixes are whole path segments.
		{"GET", "/metricsfoo", "get", []string{"proxy"}},
		{"GET", "/podsx", "get", []string{"proxy"}},
		{"GET", "/", "get", []string{"proxy"}},
		{"PUT", "/exec/ns/web/app", "update", []string{"proxy"}},
		{"PATCH", "/exec/ns/web/app", "patch", []string{"proxy"}},
		{"DELETE", "/exec/ns/web/app", "delete", []string{"proxy"}},
		{"HEAD", "/healthz", "", []string{"healthz", "proxy"}},
		{"OPTIONS", "/exec/ns/web/app", "", []string{"proxy"}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			attrs := Attributes("node-1", u, httptest.NewRequest(tc.method, tc.path, nil))
			var subs []string
			for _, a := range attrs {
				subs = append(subs, a.GetSubresource())
				if a.GetVerb() != tc.verb || a.GetResource() != "nodes" || a.GetName() != "node-1" || a.GetAPIGroup() != "" ||
					a.GetAPIVersion() != "v1" || a.GetNamespace() != "" || !a.IsResourceRequest() || a.GetUser() != u || a.GetPath() != tc.path {
					t.Errorf("attributes = %+v", a)
				}
			}
			if !reflect.DeepEqual(subs, tc.subresources) {
				t.Errorf("subresources = %v, want %v", subs, tc.subresources)
			}
		})
	}
}
