package streaming

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// fakePods knows pod ns/web (UID web-uid, ready sandbox sb1) with
// containers app (running), debugger (ephemeral, running, tty), done
// (exited) and waiting (never created). It records its calls.
type fakePods struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakePods) StreamTarget(_ context.Context, namespace, podName string, podUID types.UID, containerName string) (Target, error) {
	f.mu.Lock()
	f.calls = append(f.calls, strings.Join([]string{namespace, podName, string(podUID), containerName}, "|"))
	f.mu.Unlock()
	if f.err != nil {
		return Target{}, f.err
	}
	if namespace != "ns" || podName != "web" || (podUID != "" && podUID != "web-uid") {
		return Target{}, fmt.Errorf("pod %s/%s: %w", namespace, podName, podstate.ErrPodNotFound)
	}
	t := Target{Pod: &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "web-uid"}}, SandboxID: "sb1"}
	switch containerName {
	case "":
	case "app":
		t.Container = &Container{Name: "app", ID: "app-1", Running: true}
	case "debugger":
		t.Container = &Container{Name: "debugger", ID: "dbg-1", Running: true, Ephemeral: true, TTY: true}
	case "done":
		t.Container = &Container{Name: "done", ID: "done-1"}
	case "waiting":
		t.Container = &Container{Name: "waiting"}
	default:
		return Target{}, fmt.Errorf("container %s: %w", containerName, podstate.ErrContainerNotFound)
	}
	return t, nil
}

func (f *fakePods) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

// containers is the runtime behind cri-streaming's server, the same
// streaming server containerd embeds. Exec runs tiny fake commands: "cat"
// echoes stdin, "exit N" exits with N, "echo ..." prints. Attach prints
// a greeting and echoes stdin until it ends. PortForward connects to
// forwardTo.
type containers struct {
	mu        sync.Mutex
	resizes   []remotecommandserver.TerminalSize
	forwardTo string
}

func (c *containers) watchResizes(resize <-chan remotecommandserver.TerminalSize) {
	if resize == nil {
		return
	}
	go func() {
		for s := range resize {
			c.mu.Lock()
			c.resizes = append(c.resizes, s)
			c.mu.Unlock()
		}
	}()
}

func (c *containers) resizeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.resizes)
}

func (c *containers) Exec(_ context.Context, _ string, cmd []string, in io.Reader, out, _ io.WriteCloser, _ bool, resize <-chan remotecommandserver.TerminalSize) error {
	c.watchResizes(resize)
	switch cmd[0] {
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		return utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code}
	default:
		_, err := fmt.Fprint(out, strings.Join(cmd[1:], " "))
		return err
	}
}

func (c *containers) Attach(ctx context.Context, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, resize <-chan remotecommandserver.TerminalSize) error {
	c.watchResizes(resize)
	if _, err := io.WriteString(out, "attached\n"); err != nil {
		return err
	}
	if in == nil {
		<-ctx.Done()
		return nil
	}
	_, err := io.Copy(out, in)
	return err
}

func (c *containers) PortForward(ctx context.Context, _ string, _ int32, stream io.ReadWriteCloser) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.forwardTo)
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	<-done
	return nil
}

// fakeRuntime is the agent's view of the CRI runtime: streaming URLs from
// the cri-streaming server, statuses from a table, errors on demand.
type fakeRuntime struct {
	srv cristreaming.Server

	mu     sync.Mutex
	errs   map[string]error
	states map[string]*runtimeapi.ContainerStatus
	reqs   []any
}

func (f *fakeRuntime) record(method string, req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return f.errs[method]
}

func (f *fakeRuntime) lastRequest() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return nil
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeRuntime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := f.record("Exec", req); err != nil {
		return nil, err
	}
	return f.srv.GetExec(req)
}

func (f *fakeRuntime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := f.record("Attach", req); err != nil {
		return nil, err
	}
	return f.srv.GetAttach(req)
}

func (f *fakeRuntime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if err := f.record("PortForward", req); err != nil {
		return nil, err
	}
	return f.srv.GetPortForward(req)
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[id]
	if !ok {
		return nil, fmt.Errorf("container %q not found", id)
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id, State: st.State, ExitCode: st.ExitCode}}, nil
}

func (f *fakeRuntime) setState(id string, state runtimeapi.ContainerState, code int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[id] = &runtimeapi.ContainerStatus{State: state, ExitCode: code}
}

// auditBuffer collects audit lines.
type auditBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *auditBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *auditBuffer) Close() error { return nil }

func (b *auditBuffer) records(t *testing.T) []Record {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []Record
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// waitRecords waits until n audit records were written: a record is
// written when the handler is done with the session.
func (b *auditBuffer) waitRecords(t *testing.T, n int) []Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := b.records(t); len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d audit records after 10s: %q", n, b.buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env is the handler in front of a real streaming server, behind a fake
// authenticator that makes every caller alice.
type env struct {
	pods     *fakePods
	runtime  *fakeRuntime
	backend  *containers
	audit    *auditBuffer
	handler  http.Handler
	agent    *httptest.Server
	stopBase context.CancelFunc
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{pods: &fakePods{}, backend: &containers{}, audit: &auditBuffer{}}

	var streamServer cristreaming.Server
	backendHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { streamServer.ServeHTTP(w, r) }))
	t.Cleanup(backendHTTP.Close)
	base, _ := url.Parse(backendHTTP.URL)
	cfg := cristreaming.DefaultConfig
	cfg.BaseURL = base
	var err error
	if streamServer, err = cristreaming.NewServer(cfg, e.backend); err != nil {
		t.Fatal(err)
	}
	e.runtime = &fakeRuntime{srv: streamServer, errs: map[string]error{}, states: map[string]*runtimeapi.ContainerStatus{}}

	e.handler = NewHandler(Config{Pods: e.pods, Runtime: e.runtime, Auditor: newWriterAuditor(e.audit), ExitWait: 500 * time.Millisecond})
	asAlice := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &user.DefaultInfo{Name: "alice", UID: "alice-uid", Groups: []string{"devs", user.AllAuthenticated}}
		e.handler.ServeHTTP(w, r.WithContext(genericapirequest.WithUser(r.Context(), u)))
	})
	baseCtx, cancel := context.WithCancel(context.Background())
	e.stopBase = cancel
	e.agent = httptest.NewUnstartedServer(asAlice)
	e.agent.Config.BaseContext = func(net.Listener) context.Context { return baseCtx }
	e.agent.Start()
	t.Cleanup(func() { cancel(); e.agent.Close() })
	return e
}
