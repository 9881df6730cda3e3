package logs

import (
	"context"
	"net/http"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// responseWriter sends log bytes to the client, flushing each write when
// following so lines reach kubectl as they are written. cri-client writes
// stdout and stderr from one goroutine, so it needs no lock.
type responseWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	flush bool
}

func (o *responseWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err == nil && o.flush {
		o.Flush()
	}
	return n, err
}

// Flush sends what is buffered. A writer that cannot flush still gets every
// byte, only later, so that is not an error.
func (o *responseWriter) Flush() {
	_ = o.rc.Flush()
}

// statusOnly lets a Runtime stand in for the whole CRI RuntimeService that
// cri-client's ReadLogs asks for but only calls ContainerStatus on. The
// embedded interface is nil: should a future cri-client call anything else,
// the request panics (net/http recovers it) rather than misbehave quietly.
type statusOnly struct {
	internalapi.RuntimeService
	rt Runtime
}

func (s statusOnly) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	return s.rt.ContainerStatus(ctx, id, verbose)
}
