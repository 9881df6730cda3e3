// Package auth authenticates and authorizes requests to the agent's TLS API
// the way the kubelet does, by delegating to kube-apiserver: client
// certificates are verified against the client CA, bearer tokens through
// TokenReview, and every request is authorized with a SubjectAccessReview
// on the node object (resource "nodes", name = this node, subresource by
// path: "proxy" for exec, attach, port-forward and logs).
//
// Guard wraps an http.Handler: unauthenticated requests get 401
// "Unauthorized", forbidden ones 403 with the kubelet's message, and allowed
// ones reach the handler with the user in the request context
// (k8s.io/apiserver/pkg/endpoints/request.UserFrom), where the debug-session
// audit reads it. Each refused request is also handed to
// Options.Refusals, so that the debug audit can record refused attempts.
//
// Unlike the kubelet, anonymous requests are off unless asked for, and the
// AlwaysAllow mode exists only for local demos. The package does not serve
// TLS, choose the serving certificate or know any route: package server
// does.
package auth
