package streaming

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// Session kinds, as recorded and as the metrics' kind label.
const (
	KindExec        = "exec"
	KindAttach      = "attach"
	KindPortForward = "portforward"
)

// Record is one debug session as the audit log has it, one JSON object per
// line. A request refused before a session began (bad parameters, unknown
// pod, container not running) is recorded too, with Status and Error, and
// so is one the agent API's guard refused (401, 403; see Refusals).
type Record struct {
	Kind string `json:"kind"`
	// User, UID and Groups are the authenticated caller. Through
	// kube-apiserver that is the API server's kubelet client identity, not
	// the person running kubectl: kube-apiserver's own audit log has them,
	// and ForwardedFor and UserAgent help to match the two.
	User          string   `json:"user"`
	UID           string   `json:"uid,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	SourceAddress string   `json:"sourceAddress,omitempty"`
	ForwardedFor  string   `json:"forwardedFor,omitempty"`
	UserAgent     string   `json:"userAgent,omitempty"`

	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	PodUID      string `json:"podUID,omitempty"`
	Container   string `json:"container,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Ephemeral   bool   `json:"ephemeral"`

	// Command is exec's command line.
	Command []string `json:"command,omitempty"`
	// Stdin and TTY: an interactive session has both.
	Stdin bool `json:"stdin"`
	TTY   bool `json:"tty"`
	// Ports are port-forward's ports when the request names them (the API
	// server does; SPDY clients may name them only in stream headers).
	Ports []int32 `json:"ports,omitempty"`

	StartTime       time.Time `json:"startTime"`
	EndTime         time.Time `json:"endTime"`
	DurationSeconds float64   `json:"durationSeconds"`
	// BytesIn and BytesOut crossed the upgraded client connection (from and
	// to the client), protocol framing included.
	BytesIn  int64 `json:"bytesIn"`
	BytesOut int64 `json:"bytesOut"`
	// Status is what the client was answered: 101 for a session that was
	// established.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`

	// ExitCode is the attached container's exit code when it exited by the
	// end of the session. When it cannot be known, ExitCodeUnknown says why
	// (exec, a container still running); port-forward has neither.
	ExitCode        *int32 `json:"exitCode,omitempty"`
	ExitCodeUnknown string `json:"exitCodeUnknown,omitempty"`

	// RefusalsDropped, on the record of a refused request, counts the
	// refused requests before it that were not recorded because they came
	// faster than Refusals' rate limit.
	RefusalsDropped int64 `json:"refusalsDropped,omitempty"`
}

// Auditor writes Records and debug container decisions
// (debugapi.ContainerAudit) to klog and, when it has a file, as JSON lines to
// it. It is safe for concurrent use; a nil *Auditor only logs.
type Auditor struct {
	mu sync.Mutex
	w  io.WriteCloser
}

// NewAuditor returns an Auditor appending to path (created 0600), or one
// that only logs when path is empty. The file is never rotated or reopened:
// use copytruncate rotation.
func NewAuditor(path string) (*Auditor, error) {
	if path == "" {
		return &Auditor{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open debug audit log: %w", err)
	}
	return &Auditor{w: f}, nil
}

// newWriterAuditor writes to w; for tests.
func newWriterAuditor(w io.WriteCloser) *Auditor { return &Auditor{w: w} }

// Record logs rec and appends it to the file. A failed write is logged, not
// returned: the session is over by then.
func (a *Auditor) Record(ctx context.Context, rec *Record) {
	logger := klog.FromContext(ctx)
	kv := []any{"kind", rec.Kind, "user", rec.User, "groups", rec.Groups, "pod", klog.KRef(rec.Namespace, rec.Pod)}
	if rec.Container != "" {
		kv = append(kv, "containerName", rec.Container, "ephemeral", rec.Ephemeral)
	}
	if rec.Command != nil {
		kv = append(kv, "command", rec.Command)
	}
	kv = append(kv, "tty", rec.TTY, "status", rec.Status,
		"durationSeconds", rec.DurationSeconds, "bytesIn", rec.BytesIn, "bytesOut", rec.BytesOut)
	if rec.Ports != nil {
		kv = append(kv, "ports", rec.Ports)
	}
	if rec.ExitCode != nil {
		kv = append(kv, "exitCode", *rec.ExitCode)
	}
	if rec.Error != "" {
		kv = append(kv, "err", rec.Error)
	}
	logger.Info("Debug session ended", kv...)
	a.write(ctx, rec)
}

// Container logs the creation or refusal of debug container e and appends
// it to the file, beside the session records. A failed write is logged, not
// returned: the decision stands whether or not it was recorded.
func (a *Auditor) Container(ctx context.Context, e *debugapi.ContainerAudit) {
	logger := klog.FromContext(ctx)
	msg := "Debug container allowed"
	if e.Decision != debugapi.DecisionAllowed {
		msg = "Debug container denied"
	}
	kv := []any{"pod", klog.KRef(e.Namespace, e.Pod), "containerName", e.Container, "image", e.Image}
	if e.Target != "" {
		kv = append(kv, "target", e.Target)
	}
	if e.Command != nil {
		kv = append(kv, "command", e.Command)
	}
	if e.FieldManager != "" {
		kv = append(kv, "fieldManager", e.FieldManager)
	}
	kv = append(kv, "decision", e.Decision)
	if e.Rule != "" {
		kv = append(kv, "rule", e.Rule)
	}
	if e.Message != "" {
		kv = append(kv, "message", e.Message)
	}
	logger.Info(msg, kv...)
	a.write(ctx, e)
}

// write appends rec (a *Record or a *debugapi.ContainerAudit) to the file,
// if any, as one JSON line.
func (a *Auditor) write(ctx context.Context, rec any) {
	if a == nil || a.w == nil {
		return
	}
	logger := klog.FromContext(ctx)
	line, err := json.Marshal(rec)
	if err != nil {
		logger.Error(err, "Failed to encode debug audit record")
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	// One write per line: concurrent sessions never interleave.
	if _, err := a.w.Write(line); err != nil {
		logger.Error(err, "Failed to write debug audit record")
	}
}

// Close closes the file.
func (a *Auditor) Close() error {
	if a == nil || a.w == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.w.Close()
}
