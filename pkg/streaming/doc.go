// Package streaming serves the kubelet's debug-session endpoints, so that
// `kubectl exec`, `kubectl attach`, `kubectl debug -it` and `kubectl
// port-forward` work through kube-apiserver against the agent:
//
//	/exec/{namespace}/{pod}[/{uid}]/{container}?command=...&input=1&output=1&tty=1
//	/attach/{namespace}/{pod}[/{uid}]/{container}?input=1&output=1&tty=1
//	/portForward/{namespace}/{pod}[/{uid}]?port=8080
//
// The handler resolves the pod and container through Pods (the pod
// manager), asks the CRI runtime for a streaming URL (Exec, Attach,
// PortForward) and proxies the client's upgrade request to it with
// apimachinery's UpgradeAwareHandler, as the kubelet does. It never decodes
// the stream: SPDY or WebSocket, stdin, terminal resizes and exit statuses
// pass through to the runtime's streaming server untouched, and closing
// either side ends the session.
//
// Beyond the kubelet, every session is audited (Auditor): one JSON line with
// who, which pod and container (and whether it is ephemeral), the command,
// start and end, the bytes that crossed the upgraded connection and, for
// attach, the container's exit code when it exited. Exec exit codes travel
// inside the stream protocol, which the agent does not decode; the record
// says so instead of guessing. Requests the agent API's guard refuses on
// these routes (401, 403) are recorded too, by Refusals, rate-limited so
// that a flood of them cannot fill the disk. Metrics counts sessions, their
// duration and refused requests. Activity, when configured, tracks the exec
// and attach sessions established to each container: the idle clock of
// debug containers' idleTimeout. The Auditor records debug containers'
// creation and refusal too (Container), so that one file holds the
// node-side trail of every debug action.
//
// Status codes: 400 for bad parameters or a container that is not running,
// 404 for an unknown pod or container, the runtime's answer mapped as the
// kubelet maps it (NotFound 404, ResourceExhausted 429, else 500) when it
// refuses a streaming URL, and whatever the runtime's streaming server
// answers after that.
//
// The handler neither authenticates nor authorizes: package auth wraps it
// and leaves the user in the request context, which the audit records.
// WebSocket-to-SPDY translation (the kubelet's ExtendWebSocketsToKubelet) is
// not done: the node does not declare that feature, so kube-apiserver
// translates kubectl's WebSockets to SPDY itself.
package streaming
