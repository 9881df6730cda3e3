package streaming

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

func TestAuditorFile(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	path := filepath.Join(t.TempDir(), "debug-audit.log")
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	records := []*Record{
		{
			Kind: KindAttach, User: "kube-apiserver-kubelet-client", Groups: []string{"system:authenticated"},
			SourceAddress: "127.0.0.1:5555", ForwardedFor: "10.0.0.7", UserAgent: "kubectl/v1.37.2",
			Namespace: "ns", Pod: "web", PodUID: "uid-1", Container: "debugger-x", ContainerID: "c1", Ephemeral: true,
			Stdin: true, TTY: true, StartTime: start, EndTime: start.Add(90 * time.Second), DurationSeconds: 90,
			BytesIn: 10, BytesOut: 2000, Status: 101, ExitCode: ptr.To[int32](0),
		},
		{
			Kind: KindExec, User: "alice", Namespace: "ns", Pod: "web", Container: "app", Command: []string{"sh", "-c", "exit 3"},
			StartTime: start, EndTime: start, Status: 101, ExitCodeUnknown: "exec exit status travels inside the stream protocol",
		},
	}
	for i, rec := range records {
		// Reopening appends: a restarted agent keeps the earlier lines.
		a, err := NewAuditor(path)
		if err != nil {
			t.Fatal(err)
		}
		a.Record(ctx, rec)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
			}
		}
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), data)
	}
	want := []string{
		`{"kind":"attach","user":"kube-apiserver-kubelet-client","groups":["system:authenticated"],"sourceAddress":"127.0.0.1:5555",` +
			`"forwardedFor":"10.0.0.7","userAgent":"kubectl/v1.37.2","namespace":"ns","pod":"web","podUID":"uid-1","container":"debugger-x",` +
			`"containerID":"c1","ephemeral":true,"stdin":true,"tty":true,"startTime":"2026-11-26T10:00:00Z","endTime":"2026-11-26T10:01:30Z",` +
			`"durationSeconds":90,"bytesIn":10,"bytesOut":2000,"status":101,"exitCode":0}`,
		`{"kind":"exec","user":"alice","namespace":"ns","pod":"web","container":"app","ephemeral":false,"command":["sh","-c","exit 3"],` +
			`"stdin":false,"tty":false,"startTime":"2026-11-26T10:00:00Z","endTime":"2026-11-26T10:00:00Z","durationSeconds":0,"bytesIn":0,` +
			`"bytesOut":0,"status":101,"exitCodeUnknown":"exec exit status travels inside the stream protocol"}`,
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
		if !json.Valid([]byte(lines[i])) {
			t.Errorf("line %d is not JSON", i)
		}
	}
}

func TestAuditorWithoutFile(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	a, err := NewAuditor("")
	if err != nil {
		t.Fatal(err)
	}
	a.Record(ctx, &Record{Kind: KindExec})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var nilAuditor *Auditor
	nilAuditor.Record(ctx, &Record{Kind: KindExec})

	if _, err := NewAuditor(filepath.Join(t.TempDir(), "missing", "audit.log")); err == nil {
		t.Error("no error for a file in a missing directory")
	}
}

// TestAuditorContainer: a debug container's decision is one log line and
// one JSON line of the audit file, beside the session records.
func TestAuditorContainer(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	ctx := klog.NewContext(context.Background(), logger)
	buf := &auditBuffer{}
	a := newWriterAuditor(buf)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	allowed := &debugapi.ContainerAudit{
		Kind: debugapi.KindContainer, Time: at.Add(time.Second), Namespace: "shop", Pod: "web", PodUID: "uid-1",
		Container: "debugger-abcde", ContainerID: "c0ffee", Image: "busybox:1.37", Target: "app",
		FieldManager: "kubectl-debug", ManagedTime: &at, Decision: debugapi.DecisionAllowed, Rule: "default",
		Resources: "cpu=500m,memory=128Mi,pids=256", MaxDuration: "1h0m0s",
	}
	denied := &debugapi.ContainerAudit{
		Kind: debugapi.KindContainer, Time: at.Add(2 * time.Second), Namespace: "shop", Pod: "web", PodUID: "uid-1",
		Container: "root", Image: "evil.example/tools:latest", Command: []string{"sh"}, Privileged: true,
		Decision: debugapi.DecisionDenied, Rule: "default", Message: `debug policy rule "default": privileged debug containers are not allowed`,
	}
	a.Container(ctx, allowed)
	a.Record(ctx, &Record{Kind: KindAttach, Namespace: "shop", Pod: "web", Container: "debugger-abcde"})
	a.Container(ctx, denied)

	lines := strings.Split(strings.TrimSuffix(buf.buf.String(), "\n"), "\n")
	want := []string{
		`{"kind":"container","time":"2026-12-05T10:00:01Z","namespace":"shop","pod":"web","podUID":"uid-1","container":"debugger-abcde",` +
			`"containerID":"c0ffee","image":"busybox:1.37","target":"app","fieldManager":"kubectl-debug","managedTime":"2026-12-05T10:00:00Z",` +
			`"decision":"allowed","rule":"default","resources":"cpu=500m,memory=128Mi,pids=256","maxDuration":"1h0m0s"}`,
		`{"kind":"container","time":"2026-12-05T10:00:02Z","namespace":"shop","pod":"web","podUID":"uid-1","container":"root",` +
			`"image":"evil.example/tools:latest","command":["sh"],"privileged":true,"decision":"denied","rule":"default",` +
			`"message":"debug policy rule \"default\": privileged debug containers are not allowed"}`,
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `{"kind":"attach"`) {
		t.Fatalf("lines:\n%s", buf.buf.String())
	}
	for i, w := range want {
		if got := lines[2*i]; got != w {
			t.Errorf("container line %d:\n got %s\nwant %s", i, got, w)
		}
	}

	logs := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	for _, w := range []string{
		`Debug container allowed pod="shop/web" containerName="debugger-abcde" image="busybox:1.37" target="app" fieldManager="kubectl-debug" decision="allowed" rule="default"`,
		`Debug container denied pod="shop/web" containerName="root" image="evil.example/tools:latest" command=["sh"] decision="denied" rule="default" message=`,
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("log has no %s:\n%s", w, logs)
		}
	}

	var nilAuditor *Auditor
	nilAuditor.Container(ctx, denied)
}
