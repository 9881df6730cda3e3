package streaming

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// oneSize reports one terminal size, then nothing until done closes.
type oneSize struct {
	once sync.Once
	done chan struct{}
}

func (q *oneSize) Next() *remotecommand.TerminalSize {
	first := false
	q.once.Do(func() { first = true })
	if first {
		return &remotecommand.TerminalSize{Width: 120, Height: 40}
	}
	<-q.done
	return nil
}

func (e *env) executor(t *testing.T, path string) remotecommand.Executor {
	t.Helper()
	u, _ := url.Parse(e.agent.URL + path)
	ex, err := remotecommand.NewSPDYExecutor(&restclient.Config{Host: e.agent.URL}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestExec runs commands the way kube-apiserver asks the agent for them:
// output, a non-zero exit code and a terminal resize all cross the proxy,
// and each session leaves one audit record.
func TestExec(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out bytes.Buffer
	err := e.executor(t, "/exec/ns/web/app?command=echo&command=hello&command=world&output=1&error=1").
		StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard})
	if err != nil || out.String() != "hello world" {
		t.Fatalf("echo: %q, %v", out.String(), err)
	}

	err = e.executor(t, "/exec/ns/web/app?command=exit&command=3&output=1").
		StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
	var exitErr utilexec.CodeExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 3 {
		t.Fatalf("exit 3: error %v, want exit code 3", err)
	}

	// An interactive session: stdin echoed, a resize delivered.
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	sizes := &oneSize{done: make(chan struct{})}
	defer close(sizes.done)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- e.executor(t, "/exec/ns/web/app?command=cat&input=1&output=1&tty=1").
			StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: outW, Tty: true, TerminalSizeQueue: sizes})
		outW.Close()
	}()
	if _, err := io.WriteString(stdinW, "ping\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(outR, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echoed %q, %v", buf, err)
	}
	waitFor(t, "the resize to reach the runtime", func() bool { return e.backend.resizeCount() > 0 })
	stdinW.Close()
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	if err := <-streamErr; err != nil {
		t.Fatalf("interactive exec: %v", err)
	}
	if req := e.runtime.lastRequest().(*runtimeapi.ExecRequest); !req.Tty || !req.Stdin || req.Stderr || req.ContainerId != "app-1" {
		t.Errorf("CRI ExecRequest = %v", req)
	}

	recs := e.audit.waitRecords(t, 3)
	r := recs[2]
	if r.Kind != KindExec || r.User != "alice" || r.UID != "alice-uid" || strings.Join(r.Groups, ",") != "devs,system:authenticated" ||
		r.Namespace != "ns" || r.Pod != "web" || r.PodUID != "web-uid" || r.Container != "app" || r.ContainerID != "app-1" || r.Ephemeral ||
		strings.Join(r.Command, " ") != "cat" || !r.TTY || !r.Stdin || r.Status != http.StatusSwitchingProtocols || r.Error != "" {
		t.Errorf("record = %+v", r)
	}
	if r.BytesIn == 0 || r.BytesOut == 0 {
		t.Errorf("bytes in %d out %d, want both counted", r.BytesIn, r.BytesOut)
	}
	if r.ExitCode != nil || !strings.Contains(r.ExitCodeUnknown, "stream protocol") {
		t.Errorf("exit code %v %q, want unknown with the reason", r.ExitCode, r.ExitCodeUnknown)
	}
	if !r.EndTime.After(r.StartTime) || r.DurationSeconds <= 0 {
		t.Errorf("times %v..%v (%vs)", r.StartTime, r.EndTime, r.DurationSeconds)
	}
}

// TestExecWebSocket shows that a WebSocket client, which the runtime's
// streaming server speaks too, gets through the proxy unchanged.
func TestExecWebSocket(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ex, err := remotecommand.NewWebSocketExecutorForProtocols(&restclient.Config{Host: e.agent.URL}, "GET",
		e.agent.URL+"/exec/ns/web/app?command=echo&command=over&command=websocket&output=1", "v4.channel.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "over websocket" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
}

// TestAttachEphemeral attaches to an ephemeral container the way `kubectl
// debug -it` does; when it exits with the session, its exit code is
// recorded. The spec's tty wins over the query's.
func TestAttachEphemeral(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	e.handler = NewHandler(Config{Pods: e.pods, Runtime: e.runtime, Auditor: newWriterAuditor(e.audit), Metrics: metrics, ExitWait: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	stdinR, stdinW := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.executor(t, "/attach/ns/web/debugger?input=1&output=1&error=1").
			StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Tty: true})
	}()
	waitFor(t, "the greeting", func() bool { return out.String() == "attached\n" })
	// The shell exits: the stream closes, then the runtime reports it.
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("attach: %v", err)
	}
	e.runtime.setState("dbg-1", runtimeapi.ContainerState_CONTAINER_EXITED, 7)

	r := e.audit.waitRecords(t, 1)[0]
	if r.Kind != KindAttach || !r.Ephemeral || !r.TTY || r.Container != "debugger" || r.ContainerID != "dbg-1" || r.Status != http.StatusSwitchingProtocols {
		t.Errorf("record = %+v", r)
	}
	if r.ExitCode == nil || *r.ExitCode != 7 || r.ExitCodeUnknown != "" {
		t.Errorf("exit code %v %q, want 7", r.ExitCode, r.ExitCodeUnknown)
	}
	if req := e.runtime.lastRequest().(*runtimeapi.AttachRequest); !req.Tty || req.Stderr {
		t.Errorf("CRI AttachRequest = %v, want the spec's tty and no stderr", req)
	}
	if got := testutil.ToFloat64(metrics.sessions.WithLabelValues(KindAttach)); got != 1 {
		t.Errorf("debug_sessions_total{kind=attach} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(reg, "debug_session_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
}

// TestPortForward carries an HTTP request through kubectl's port-forward
// client, the runtime's streaming server and the agent.
func TestPortForward(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from the app") }))
	defer app.Close()
	e := newEnv(t)
	e.backend.forwardTo = app.Listener.Addr().String()

	u, _ := url.Parse(e.agent.URL + "/portForward/ns/web?port=8080")
	transport, upgrader, err := spdy.RoundTripperFor(&restclient.Config{Host: e.agent.URL})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fwDone := make(chan error, 1)
	go func() { fwDone <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-fwDone:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from the app" {
		t.Errorf("body = %q", body)
	}
	close(stop)
	if err := <-fwDone; err != nil {
		t.Errorf("port-forward ended with %v", err)
	}

	r := e.audit.waitRecords(t, 1)[0]
	if r.Kind != KindPortForward || r.Container != "" || len(r.Ports) != 1 || r.Ports[0] != 8080 || r.Status != http.StatusSwitchingProtocols ||
		r.BytesIn == 0 || r.BytesOut == 0 || r.ExitCode != nil || r.ExitCodeUnknown != "" {
		t.Errorf("record = %+v", r)
	}
	if req := e.runtime.lastRequest().(*runtimeapi.PortForwardRequest); req.PodSandboxId != "sb1" || len(req.Port) != 1 || req.Port[0] != 8080 {
		t.Errorf("CRI PortForwardRequest = %v", req)
	}
}

// TestClientGoneEndsSession: a client that goes away mid-session ends it
// on both sides, and nothing of it stays behind.
func TestClientGoneEndsSession(t *testing.T) {
	e := newEnv(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithCancel(context.Background())
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.executor(t, "/attach/ns/web/app?input=1&output=1").
			StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out})
	}()
	waitFor(t, "the greeting", func() bool { return out.String() == "attached\n" })
	cancel()
	<-done

	r := e.audit.waitRecords(t, 1)[0]
	if r.Status != http.StatusSwitchingProtocols || r.ExitCode != nil || r.ExitCodeUnknown == "" {
		t.Errorf("record = %+v", r)
	}
	e.agent.CloseClientConnections()
}

// TestShutdownEndsSession: when the server's context ends (the agent
// stops), a session nobody closes ends too.
func TestShutdownEndsSession(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.executor(t, "/attach/ns/web/app?input=1&output=1").
			StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out})
	}()
	waitFor(t, "the greeting", func() bool { return out.String() == "attached\n" })
	e.stopBase()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session outlived the server")
	}
	e.audit.waitRecords(t, 1)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionActivity: an attach or exec session established to a
// container marks it active until it ends, and its end records the time
// and tells onEnd; refused requests leave no trace.
func TestSessionActivity(t *testing.T) {
	e := newEnv(t)
	ends := &endings{}
	act := NewActivity(time.Now, ends.onEnd)
	trackerStart, _ := act.LastActivity("dbg-1")
	e.handler = NewHandler(Config{Pods: e.pods, Runtime: e.runtime, Auditor: newWriterAuditor(e.audit), Activity: act, ExitWait: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	untouched := func(what, id string) {
		t.Helper()
		if last, active := act.LastActivity(id); active || !last.Equal(trackerStart) {
			t.Errorf("%s: LastActivity(%s) = %v, %v; want the tracker's start", what, id, last, active)
		}
	}

	// Refused: a container that is not running, a runtime that says no.
	if err := e.executor(t, "/attach/ns/web/done?output=1").StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
		t.Fatal("attach to an exited container succeeded")
	}
	e.runtime.mu.Lock()
	e.runtime.errs["Exec"] = errors.New("no exec today")
	e.runtime.mu.Unlock()
	if err := e.executor(t, "/exec/ns/web/app?command=echo&output=1").StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
		t.Fatal("exec the runtime refused succeeded")
	}
	e.runtime.mu.Lock()
	delete(e.runtime.errs, "Exec")
	e.runtime.mu.Unlock()
	// The runtime gives a URL, and then its streaming server does not
	// know the session: no 101, no activity.
	stale := NewHandler(Config{Pods: e.pods, Runtime: staleRuntime{e.runtime}, Auditor: newWriterAuditor(e.audit), Activity: act})
	staleAgent := httptest.NewServer(stale)
	defer staleAgent.Close()
	u, _ := url.Parse(staleAgent.URL + "/attach/ns/web/debugger?output=1")
	ex, err := remotecommand.NewSPDYExecutor(&restclient.Config{Host: staleAgent.URL}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
		t.Fatal("attach through a stale URL succeeded")
	}
	e.audit.waitRecords(t, 3)
	untouched("refused attach", "done-1")
	untouched("refused exec", "app-1")
	untouched("stale attach", "dbg-1")

	// `kubectl debug -it`'s attach: active while it lasts.
	stdinR, stdinW := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.executor(t, "/attach/ns/web/debugger?input=1&output=1").
			StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Tty: true})
	}()
	waitFor(t, "the greeting", func() bool { return out.String() == "attached\n" })
	if _, active := act.LastActivity("dbg-1"); !active {
		t.Error("debugger not active during the attach session")
	}
	untouched("another container during the session", "app-1")
	if n := ends.count(); n != 0 {
		t.Errorf("onEnd called %d times during the session", n)
	}
	beforeEnd := time.Now()
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("attach: %v", err)
	}
	e.audit.waitRecords(t, 4)
	if last, active := act.LastActivity("dbg-1"); active || last.Before(beforeEnd) || last.After(time.Now()) {
		t.Errorf("after the session: LastActivity = %v, %v; want inactive since its end (after %v)", last, active, beforeEnd)
	}
	ends.mu.Lock()
	if len(ends.pods) != 1 || ends.pods[0] != "web-uid" {
		t.Errorf("onEnd calls = %v, want one for web-uid", ends.pods)
	}
	ends.mu.Unlock()

	// An exec counts too.
	beforeExec := time.Now()
	if err := e.executor(t, "/exec/ns/web/app?command=echo&command=hi&output=1").StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err != nil {
		t.Fatalf("exec: %v", err)
	}
	e.audit.waitRecords(t, 5)
	if last, active := act.LastActivity("app-1"); active || last.Before(beforeExec) {
		t.Errorf("after exec: LastActivity = %v, %v; want inactive since its end (after %v)", last, active, beforeExec)
	}
	if n := ends.count(); n != 2 {
		t.Errorf("onEnd called %d times, want 2", n)
	}
}

// staleRuntime hands out attach URLs its streaming server does not know.
type staleRuntime struct{ *fakeRuntime }

func (r staleRuntime) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	resp, err := r.fakeRuntime.Attach(ctx, req)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(resp.GetUrl())
	u.Path = "/attach/stale-token"
	return &runtimeapi.AttachResponse{Url: u.String()}, nil
}
