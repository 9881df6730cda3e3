package streaming

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// resolveFailure turns a Pods error into the status and message the client
// gets, worded as the kubelet's log and attach endpoints word them.
func resolveFailure(err error, podName, containerName string) (int, string) {
	switch {
	case errors.Is(err, podstate.ErrPodNotFound):
		return http.StatusNotFound, fmt.Sprintf("pod %q does not exist", podName)
	case errors.Is(err, podstate.ErrContainerNotFound):
		return http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", containerName, podName)
	default:
		return http.StatusInternalServerError, fmt.Sprintf("unable to find the target in pod %q: %v", podName, err)
	}
}

// notRunning is why a session cannot start in a container that does not
// run (400), as the kubelet words a waiting container for logs.
func notRunning(c *Container, podName string) string {
	if c.ID == "" {
		return fmt.Sprintf("container %q in pod %q is waiting to start", c.Name, podName)
	}
	return fmt.Sprintf("container %q in pod %q is not running", c.Name, podName)
}

// runtimeFailure maps a CRI error from Exec, Attach or PortForward to a
// status as the kubelet does (cri-streaming's WriteError): NotFound 404,
// ResourceExhausted (too many pending sessions) 429, anything else 500.
func runtimeFailure(err error) int {
	switch grpcstatus.Code(err) {
	case codes.NotFound:
		return http.StatusNotFound
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers with a plain-text message without a trailing newline,
// which kube-apiserver relays to kubectl ("unable to upgrade connection:
// ...").
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
