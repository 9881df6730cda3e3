package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	crilogs "k8s.io/cri-client/pkg/logs"
	"k8s.io/klog/v2"
)

// pattern is the kubelet's route. The full path is matched, so the handler
// must be mounted without http.StripPrefix, e.g. at "/containerLogs/".
const pattern = "GET /containerLogs/{podNamespace}/{podID}/{containerName}"

// NewHandler returns the handler of GET
// /containerLogs/{namespace}/{pod}/{container}. resolver finds the
// container's log file; runtime answers whether a followed container still
// runs, and where its log is when the resolver does not say.
//
// The handler neither authenticates nor authorizes: the caller wraps it.
// A follow streams until the container stops or the client goes away, so the
// server must not set a WriteTimeout on this route.
func NewHandler(resolver Resolver, runtime Runtime) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pattern, &handler{resolver: resolver, runtime: runtime, now: time.Now})
	return mux
}

type handler struct {
	resolver Resolver
	runtime  Runtime
	now      func() time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	namespace, podName, containerName := r.PathValue("podNamespace"), r.PathValue("podID"), r.PathValue("containerName")
	logger := klog.FromContext(r.Context()).WithValues("pod", klog.KRef(namespace, podName), "containerName", containerName)
	ctx := klog.NewContext(r.Context(), logger)

	opts, err := decodeOptions(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unable to decode query: %v", err))
		return
	}
	if errs := validateOptions(opts); len(errs) > 0 {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("invalid request: %v", errs.ToAggregate()))
		return
	}

	target, err := h.resolver.ContainerLogTarget(ctx, namespace, podName, containerName, opts.Previous)
	if err != nil {
		code, msg := resolveFailure(err, podName, containerName)
		logger.V(4).Info("No logs to serve", "reason", msg, "err", err)
		writeError(w, code, msg)
		return
	}
	id := containerID(target.ContainerID)
	path, err := h.logPath(ctx, target.Path, id)
	if err != nil {
		logger.V(4).Info("No log file to serve", "containerID", id, "err", err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	logger.V(4).Info("Serving container logs", "containerID", id, "path", path, "follow", opts.Follow, "previous", opts.Previous)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := &responseWriter{w: w, rc: http.NewResponseController(w), flush: opts.Follow}
	if opts.Follow {
		// Send the headers now: a follow may wait long for its first line,
		// and the API server waits for them before it answers kubectl.
		out.Flush()
	}
	stdout, stderr := streams(*opts.Stream, out)
	err = crilogs.ReadLogs(ctx, path, id, readOptions(opts, h.now()), statusOnly{rt: h.runtime}, stdout, stderr)
	if err == nil {
		return
	}
	if r.Context().Err() != nil {
		logger.V(4).Info("Stopped serving container logs, the client went away", "containerID", id)
		return
	}
	logger.Error(err, "Failed to serve container logs", "containerID", id, "path", path)
	// The status is long sent; like the kubelet, tell the reader why the
	// logs end here.
	_, _ = io.WriteString(out, err.Error())
}

// logPath returns the log file to read: the resolver's, else the one the
// runtime reports, as the kubelet reads it. It fails when the file cannot be
// opened, so that this is answered with a status rather than in the body.
func (h *handler) logPath(ctx context.Context, path, id string) (string, error) {
	if id == "" {
		// Following needs the ID to learn when the container stops.
		return "", errors.New("unable to retrieve container logs: no container ID")
	}
	if path == "" {
		resp, err := h.runtime.ContainerStatus(ctx, id, false)
		if err != nil || resp.GetStatus().GetLogPath() == "" {
			klog.FromContext(ctx).V(4).Info("Failed to get container status", "containerID", id, "err", err)
			return "", fmt.Errorf("unable to retrieve container logs for %s", id)
		}
		path = resp.GetStatus().GetLogPath()
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("unable to retrieve container logs for %s: %w", id, err)
	}
	f.Close()
	return path, nil
}

// containerID strips the "runtime://" prefix a pod status puts before the
// CRI ID.
func containerID(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		return after
	}
	return id
}

// streams picks the writers for the requested stream; cri-client skips a
// stream whose writer is nil without counting it against limitBytes.
func streams(stream string, out io.Writer) (stdout, stderr io.Writer) {
	switch stream {
	case v1.LogStreamStdout:
		return out, nil
	case v1.LogStreamStderr:
		return nil, out
	default:
		return out, out
	}
}

// writeError answers with a plain-text message, without the trailing newline
// http.Error adds, as the kubelet does; the API server quotes the body to
// kubectl.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
