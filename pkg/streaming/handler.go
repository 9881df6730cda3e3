package streaming

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
)

// Config wires the handler.
type Config struct {
	Pods    Pods
	Runtime Runtime
	// Auditor records sessions; nil only logs them.
	Auditor *Auditor
	// Metrics may be nil.
	Metrics *Metrics
	// Activity, when not nil, learns of the exec and attach sessions
	// established to a container: the idle clock of debug containers.
	Activity *Activity
	// ExitWait bounds how long, after an attach session ends, the handler
	// waits for the container to report an exit; 0 means 2s. A detached
	// client leaves the container running and costs this long once.
	ExitWait time.Duration
}

// NewHandler returns the handler of the exec, attach and portForward
// routes (GET and POST, with and without the pod UID). It matches full
// paths: mount it at "/exec/", "/attach/" and "/portForward/" without
// http.StripPrefix.
//
// Sessions last as long as the client and the runtime keep them open, so
// the server must not set a WriteTimeout; they end when the request's
// context ends (the server shutting down), too.
func NewHandler(cfg Config) http.Handler {
	if cfg.ExitWait == 0 {
		cfg.ExitWait = 2 * time.Second
	}
	h := &handler{cfg: cfg, now: time.Now}
	mux := http.NewServeMux()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		for _, p := range []string{"/{podNamespace}/{podID}/{containerName}", "/{podNamespace}/{podID}/{uid}/{containerName}"} {
			mux.HandleFunc(m+" /exec"+p, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, KindExec) })
			mux.HandleFunc(m+" /attach"+p, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, KindAttach) })
		}
		for _, p := range []string{"/{podNamespace}/{podID}", "/{podNamespace}/{podID}/{uid}"} {
			mux.HandleFunc(m+" /portForward"+p, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, KindPortForward) })
		}
	}
	return mux
}

type handler struct {
	cfg Config
	now func() time.Time
}

// request is a parsed session request.
type request struct {
	kind                                   string
	namespace, podName, uid, containerName string
	streams                                streamOptions
	command                                []string
	ports                                  []int32
}

// serve runs one session from request to audit record.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, kind string) {
	req := request{
		kind: kind, namespace: r.PathValue("podNamespace"), podName: r.PathValue("podID"),
		uid: r.PathValue("uid"), containerName: r.PathValue("containerName"),
	}
	rec := h.newRecord(r, &req)
	// The record names kind, pod and container itself.
	auditCtx := r.Context()
	logger := klog.FromContext(r.Context()).WithValues("kind", kind, "pod", klog.KRef(req.namespace, req.podName))
	if req.containerName != "" {
		logger = logger.WithValues("containerName", req.containerName)
	}
	ctx := klog.NewContext(r.Context(), logger)
	r = r.WithContext(ctx)

	sw := &sessionWriter{ResponseWriter: w}
	// Ending the request's context (the server stopping) ends the session:
	// a hijacked connection is no longer the server's to close.
	defer context.AfterFunc(ctx, sw.close)()
	defer func() {
		rec.EndTime = h.now()
		rec.DurationSeconds = rec.EndTime.Sub(rec.StartTime).Seconds()
		rec.Status, rec.BytesIn, rec.BytesOut = sw.result()
		h.cfg.Auditor.Record(auditCtx, rec)
	}()
	fail := func(code int, msg string) {
		logger.V(2).Info("Refused debug session", "status", code, "reason", msg)
		rec.Error = msg
		writeError(sw, code, msg)
	}

	if err := req.parse(r.URL.Query()); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	rec.Command, rec.Stdin, rec.TTY, rec.Ports = req.command, req.streams.Stdin, req.streams.TTY, req.ports
	if !httpstream.IsUpgradeRequest(r) {
		fail(http.StatusBadRequest, "Upgrade request required")
		return
	}

	target, err := h.cfg.Pods.StreamTarget(ctx, req.namespace, req.podName, types.UID(req.uid), req.containerName)
	if err != nil {
		code, msg := resolveFailure(err, req.podName, req.containerName)
		fail(code, msg)
		return
	}
	rec.PodUID = string(target.Pod.UID)
	if c := target.Container; c != nil {
		rec.ContainerID, rec.Ephemeral = c.ID, c.Ephemeral
		if kind == KindAttach {
			// Whether the process has a terminal was fixed when it started.
			req.streams.TTY = c.TTY
			if c.TTY {
				req.streams.Stderr = false
			}
			rec.TTY = c.TTY
		}
		if !c.Running || c.ID == "" {
			fail(http.StatusBadRequest, notRunning(c, req.podName))
			return
		}
	} else if target.SandboxID == "" {
		fail(http.StatusBadRequest, fmt.Sprintf("pod %q has no running sandbox", req.podName))
		return
	}

	loc, err := h.streamURL(ctx, &req, target)
	if err != nil {
		logger.V(2).Info("Runtime refused a streaming URL", "err", err)
		rec.Error = err.Error()
		writeError(sw, runtimeFailure(err), err.Error())
		return
	}

	kv := []any{"user", rec.User, "tty", rec.TTY}
	if target.Container != nil {
		kv = append(kv, "ephemeral", rec.Ephemeral)
	}
	if rec.Command != nil {
		kv = append(kv, "command", rec.Command)
	}
	logger.Info("Debug session started", kv...)
	h.cfg.Metrics.started(kind)
	if c := target.Container; c != nil && h.cfg.Activity != nil {
		// A session counts as activity once it is established: when the
		// runtime's streaming server answered the upgrade with 101 and the
		// client was sent it. A runtime that refuses, or a client that
		// never gets that far, used nothing of the container.
		sw.onUpgrade = func() func() { return h.cfg.Activity.Begin(target.Pod.UID, c.ID) }
		defer sw.endSession()
	}
	up := proxy.NewUpgradeAwareHandler(loc, nil /*transport*/, false /*wrapTransport*/, true /*upgradeRequired*/, &responder{rec: rec})
	up.ServeHTTP(sw, r)
	// The session is over for the container now, not after the wait for
	// an attached container's exit below.
	sw.endSession()
	h.cfg.Metrics.ended(kind, h.now().Sub(rec.StartTime))

	if status, _, _ := sw.result(); status == http.StatusSwitchingProtocols {
		switch kind {
		case KindExec:
			rec.ExitCodeUnknown = "exec exit status travels inside the stream protocol, which the agent proxies without decoding"
		case KindAttach:
			rec.ExitCode, rec.ExitCodeUnknown = h.attachExit(ctx, target.Container.ID)
		}
	}
}

// parse reads the query parameters of req's kind.
func (req *request) parse(q url.Values) error {
	var err error
	switch req.kind {
	case KindExec:
		req.command = q["command"]
		if len(req.command) == 0 {
			return errors.New("you must specify at least one command for the container")
		}
		req.streams, err = parseStreamOptions(q)
	case KindAttach:
		req.streams, err = parseStreamOptions(q)
	case KindPortForward:
		req.ports, err = parsePorts(q)
	}
	return err
}

func (h *handler) newRecord(r *http.Request, req *request) *Record {
	rec := &Record{
		Kind: req.kind, Namespace: req.namespace, Pod: req.podName, PodUID: req.uid, Container: req.containerName,
		StartTime: h.now(), SourceAddress: r.RemoteAddr,
		ForwardedFor: r.Header.Get("X-Forwarded-For"), UserAgent: r.UserAgent(),
	}
	if u, ok := genericapirequest.UserFrom(r.Context()); ok {
		rec.User, rec.UID, rec.Groups = u.GetName(), u.GetUID(), u.GetGroups()
	}
	return rec
}

// streamURL asks the runtime where it serves this session.
func (h *handler) streamURL(ctx context.Context, req *request, target Target) (*url.URL, error) {
	var raw string
	switch req.kind {
	case KindExec:
		resp, err := h.cfg.Runtime.Exec(ctx, &runtimeapi.ExecRequest{
			ContainerId: target.Container.ID, Cmd: req.command, Tty: req.streams.TTY,
			Stdin: req.streams.Stdin, Stdout: req.streams.Stdout, Stderr: req.streams.Stderr,
		})
		if err != nil {
			return nil, fmt.Errorf("unable to exec in container %q: %w", target.Container.Name, err)
		}
		raw = resp.GetUrl()
	case KindAttach:
		resp, err := h.cfg.Runtime.Attach(ctx, &runtimeapi.AttachRequest{
			ContainerId: target.Container.ID, Tty: req.streams.TTY,
			Stdin: req.streams.Stdin, Stdout: req.streams.Stdout, Stderr: req.streams.Stderr,
		})
		if err != nil {
			return nil, fmt.Errorf("unable to attach to container %q: %w", target.Container.Name, err)
		}
		raw = resp.GetUrl()
	case KindPortForward:
		resp, err := h.cfg.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: target.SandboxID, Port: req.ports})
		if err != nil {
			return nil, fmt.Errorf("unable to port-forward to pod %q: %w", req.podName, err)
		}
		raw = resp.GetUrl()
	}
	loc, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("runtime returned an invalid streaming URL: %w", err)
	}
	if loc.Host == "" {
		return nil, fmt.Errorf("runtime returned streaming URL %q without a host", raw)
	}
	return loc, nil
}

// attachExit learns whether the attached container exited with the
// session, as it does when the user leaves `kubectl debug -it`'s shell.
// The runtime may report the exit a moment after the stream closes.
func (h *handler) attachExit(ctx context.Context, id string) (*int32, string) {
	var (
		code    *int32
		lastErr error
	)
	// The request's context may be done already; this look is part of
	// the record, not of the request.
	ctx = context.WithoutCancel(ctx)
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, h.cfg.ExitWait, true, func(ctx context.Context) (bool, error) {
		resp, err := h.cfg.Runtime.ContainerStatus(ctx, id, false)
		if err != nil {
			lastErr = err
			return false, nil
		}
		lastErr = nil
		if st := resp.GetStatus(); st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			c := st.GetExitCode()
			code = &c
			return true, nil
		}
		return false, nil
	})
	switch {
	case code != nil:
		return code, ""
	case lastErr != nil:
		return nil, fmt.Sprintf("container status unavailable: %v", lastErr)
	default:
		return nil, "container still running when the session ended"
	}
}

// responder answers when the runtime's streaming server cannot be reached
// or answers nonsense; the kubelet answers 500 too.
type responder struct{ rec *Record }

func (p *responder) Error(w http.ResponseWriter, req *http.Request, err error) {
	klog.FromContext(req.Context()).Error(err, "Failed to proxy debug session to the runtime")
	p.rec.Error = err.Error()
	writeError(w, http.StatusInternalServerError, err.Error())
}
