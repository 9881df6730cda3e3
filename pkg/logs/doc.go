// Package logs serves container logs the way the kubelet's
// /containerLogs/{namespace}/{pod}/{container} endpoint does, so that
// `kubectl logs` works through kube-apiserver's pods/log subresource.
//
// The handler only parses and validates the request, asks a Resolver (the pod
// manager) which log file belongs to the container, and hands the file to
// k8s.io/cri-client/pkg/logs, the same reader the kubelet uses. That keeps the
// semantics of follow, previous, sinceSeconds, sinceTime, timestamps,
// tailLines, limitBytes and stream identical to the kubelet's, down to how
// partial (P) lines are joined and when a follow ends: once the runtime
// reports the container is no longer running and the file is drained.
//
// Status codes follow the kubelet: 400 for a query that cannot be decoded,
// 422 for options that fail validation, 404 for an unknown pod or a container
// not in the pod's spec, and 400 for every other reason the logs cannot be
// served. Once streaming has begun the status is 200, and an error that stops
// the stream is appended to the body as text, as the kubelet does.
//
// It does not authenticate or authorize requests, rotate or garbage-collect
// log files, or know anything about pods itself; those belong to the server
// that mounts the handler and to the pod manager behind the Resolver.
package logs
