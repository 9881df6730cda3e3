package auth

import (
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// pathSubresources maps a path prefix to the subresource of nodes it is
// authorized as, before the catch-all "proxy". The kubelet's table; /spec
// is kept from older kubelets, which served it.
var pathSubresources = []struct{ prefix, subresource string }{
	{"/stats", "stats"},
	{"/metrics", "metrics"},
	{"/logs", "log"}, // "log" as in pods/log
	{"/spec", "spec"},
	{"/checkpoint", "checkpoint"},
	{"/statusz", "statusz"},
	{"/flagz", "configz"},
}

// fineGrained are the paths for which the kubelet (KubeletFineGrainedAuthz,
// locked on since 1.36) first asks for a narrower subresource and then
// falls back to "proxy", so that a monitoring identity needs no proxy
// right just to read /pods or /healthz.
var fineGrained = []struct{ prefix, subresource string }{
	{"/pods", "pods"},
	{"/runningpods", "pods"},
	{"/healthz", "healthz"},
	{"/configz", "configz"},
}

// Attributes returns what a request to the agent API is authorized as, in
// the order they are tried: the first allowed one admits the request. They
// differ only in subresource.
func Attributes(nodeName string, u user.Info, r *http.Request) []authorizer.Attributes {
	path := r.URL.Path
	var subresources []string
	for _, f := range fineGrained {
		if isSubpath(path, f.prefix) {
			subresources = append(subresources, f.subresource)
			break
		}
	}
	sub := "proxy"
	for _, p := range pathSubresources {
		if isSubpath(path, p.prefix) {
			sub = p.subresource
			break
		}
	}
	subresources = append(subresources, sub)

	attrs := make([]authorizer.Attributes, 0, len(subresources))
	for _, s := range subresources {
		attrs = append(attrs, authorizer.AttributesRecord{
			User:            u,
			Verb:            verb(r.Method),
			APIGroup:        "",
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     s,
			Name:            nodeName,
			ResourceRequest: true,
			Path:            path,
		})
	}
	return attrs
}

// verb maps the HTTP method to an API verb as the kubelet does; other
// methods (HEAD, OPTIONS) get no verb, which no RBAC rule grants.
func verb(method string) string {
	switch method {
	case http.MethodGet:
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// isSubpath reports whether path is prefix or below it: /metrics/cadvisor
// is under /metrics, /metricsfoo is not.
func isSubpath(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
