package logs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
)

const tsFormat = "2006-01-02T15:04:05.000000000Z07:00"

// criLine is one line of a CRI log file.
func criLine(ts time.Time, stream, tag, msg string) string {
	return fmt.Sprintf("%s %s %s %s\n", ts.UTC().Format(tsFormat), stream, tag, msg)
}

func appendLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "")); err != nil {
		t.Fatal(err)
	}
}

// env is pod ns/web on a fake node: container app (running, with a
// previous instance), sidecar (whose path only the runtime knows), and
// containers that fail in the ways a Resolver reports.
type env struct {
	dir             string
	runtime         *fakeRuntime
	handler         http.Handler
	old, recent     time.Time
	appLog, prevLog string
}

func newEnv(t *testing.T) *env {
	e := &env{dir: t.TempDir(), runtime: newFakeRuntime()}
	now := time.Now()
	e.old, e.recent = now.Add(-2*time.Hour), now.Add(-10*time.Second)
	e.appLog, e.prevLog = filepath.Join(e.dir, "1.log"), filepath.Join(e.dir, "0.log")
	appendLog(t, e.appLog,
		criLine(e.old, "stdout", "F", "one"),
		criLine(e.old, "stderr", "F", "two"),
		criLine(e.recent, "stdout", "P", "thr"),
		criLine(e.recent.Add(time.Millisecond), "stdout", "F", "ee"),
		criLine(e.recent.Add(2*time.Millisecond), "stderr", "F", "four"),
	)
	appendLog(t, e.prevLog, criLine(e.old.Add(-time.Hour), "stdout", "F", "old run"))
	quietLog := filepath.Join(e.dir, "quiet.log")
	appendLog(t, quietLog)
	sidecarLog := filepath.Join(e.dir, "sidecar.log")
	appendLog(t, sidecarLog, criLine(e.old, "stdout", "F", "from sidecar"))

	e.runtime.set("app1", runtimeapi.ContainerState_CONTAINER_RUNNING, e.appLog)
	e.runtime.set("app0", runtimeapi.ContainerState_CONTAINER_EXITED, e.prevLog)
	e.runtime.set("side", runtimeapi.ContainerState_CONTAINER_RUNNING, sidecarLog)
	e.runtime.set("quiet", runtimeapi.ContainerState_CONTAINER_RUNNING, quietLog)
	resolver := &fakeResolver{
		current: map[string]LogTarget{
			"app":     {Path: e.appLog, ContainerID: "containerd://app1"},
			"sidecar": {ContainerID: "containerd://side"},
			"gone":    {Path: filepath.Join(e.dir, "missing.log"), ContainerID: "gone"},
			"noid":    {Path: e.appLog},
			"unknown": {ContainerID: "unknown"},
			"lost":    {Path: e.appLog, ContainerID: "lost"},
			"quiet":   {Path: quietLog, ContainerID: "quiet"},
		},
		previous: map[string]LogTarget{
			"app": {Path: e.prevLog, ContainerID: "app0"},
		},
		errs: map[string]error{
			"debugger": &WaitingError{},
			"init":     &WaitingError{Reason: "ContainerCreating"},
		},
	}
	e.handler = NewHandler(resolver, e.runtime)
	return e
}

func (e *env) get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil).WithContext(ctx))
	return rec
}

func TestServeLogs(t *testing.T) {
	e := newEnv(t)
	ts := func(t time.Time) string { return t.UTC().Format(tsFormat) + " " }
	for _, tc := range []struct {
		name, query, container string
		want                   string
	}{
		{name: "all", want: "one\ntwo\nthree\nfour\n"},
		{name: "timestamps prefix only whole lines", query: "timestamps=true",
			want: ts(e.old) + "one\n" + ts(e.old) + "two\n" + ts(e.recent) + "three\n" + ts(e.recent.Add(2*time.Millisecond)) + "four\n"},
		// Like the kubelet, tail counts lines of the file, so the last two
		// hold only the end of the partial line.
		{name: "tailLines", query: "tailLines=2", want: "ee\nfour\n"},
		{name: "tailLines 0", query: "tailLines=0", want: ""},
		{name: "tailLines beyond the file", query: "tailLines=100", want: "one\ntwo\nthree\nfour\n"},
		{name: "old tail parameter", query: "tail=1", want: "four\n"},
		{name: "limitBytes", query: "limitBytes=5", want: "one\nt"},
		{name: "limitBytes with timestamps", query: "limitBytes=10&timestamps=true", want: ts(e.old)[:10]},
		{name: "sinceSeconds", query: "sinceSeconds=60", want: "three\nfour\n"},
		{name: "sinceTime", query: "sinceTime=" + e.recent.Add(-5*time.Second).UTC().Format(time.RFC3339), want: "three\nfour\n"},
		{name: "stdout only", query: "stream=Stdout", want: "one\nthree\n"},
		{name: "stderr only", query: "stream=Stderr", want: "two\nfour\n"},
		{name: "limitBytes counts the chosen stream", query: "stream=Stderr&limitBytes=6", want: "two\nfo"},
		{name: "previous", query: "previous=true", want: "old run\n"},
		{name: "log path from the runtime", container: "sidecar", want: "from sidecar\n"},
		{name: "follow of a stopped container ends at EOF", query: "follow=true&previous=true", want: "old run\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			container := tc.container
			if container == "" {
				container = "app"
			}
			rec := e.get(t, "/containerLogs/ns/web/"+container+"?"+tc.query)
			if rec.Code != http.StatusOK {
				t.Fatalf("code = %d (%s), want 200", rec.Code, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("body = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServeLogsErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, target string
		wantCode     int
		wantBody     string
	}{
		{"unknown pod", "/containerLogs/ns/nope/app", http.StatusNotFound, `pod "nope" does not exist`},
		{"unknown container", "/containerLogs/ns/web/ghost", http.StatusNotFound, `container "ghost" not found in pod "web"`},
		{"container that never ran", "/containerLogs/ns/web/debugger", http.StatusBadRequest, `container "debugger" in pod "web" is waiting to start - no logs yet`},
		{"waiting container", "/containerLogs/ns/web/init", http.StatusBadRequest, `container "init" in pod "web" is waiting to start: ContainerCreating`},
		{"no previous instance", "/containerLogs/ns/web/sidecar?previous=true", http.StatusBadRequest, `previous terminated container "sidecar" in pod "web" not found`},
		{"missing log file", "/containerLogs/ns/web/gone", http.StatusBadRequest, "unable to retrieve container logs for gone: open "},
		{"no container ID", "/containerLogs/ns/web/noid", http.StatusBadRequest, "no container ID"},
		{"runtime does not know the container", "/containerLogs/ns/web/unknown", http.StatusBadRequest, "unable to retrieve container logs for unknown"},
		{"both since", "/containerLogs/ns/web/app?sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z", http.StatusUnprocessableEntity,
			"invalid request: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"negative tailLines", "/containerLogs/ns/web/app?tailLines=-1", http.StatusUnprocessableEntity, "tailLines: Invalid value: -1"},
		{"zero limitBytes", "/containerLogs/ns/web/app?limitBytes=0", http.StatusUnprocessableEntity, "limitBytes: Invalid value: 0"},
		{"bad stream", "/containerLogs/ns/web/app?stream=both", http.StatusUnprocessableEntity, `stream: Unsupported value: "both"`},
		{"stream with tailLines", "/containerLogs/ns/web/app?stream=Stdout&tailLines=1", http.StatusUnprocessableEntity, "mutually exclusive"},
		{"undecodable", "/containerLogs/ns/web/app?sinceSeconds=soon", http.StatusBadRequest, "unable to decode query: sinceSeconds: "},
		{"bad sinceTime", "/containerLogs/ns/web/app?sinceTime=2026-01-02", http.StatusBadRequest, "unable to decode query: sinceTime: "},
		{"short path", "/containerLogs/ns/web", http.StatusNotFound, ""},
		{"long path", "/containerLogs/ns/web/app/more", http.StatusNotFound, ""},
		// The mux cleans the path, so an empty name never reaches the handler.
		{"empty pod name", "/containerLogs/ns//app", http.StatusTemporaryRedirect, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.get(t, tc.target)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}

	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/containerLogs/ns/web/app", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: code = %d, want 405", rec.Code)
	}
}

// TestFollow streams over a real connection: lines written while following
// arrive, and the response ends once the runtime reports the container
// exited.
func TestFollow(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/containerLogs/ns/web/app?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("got %d %q, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	readLine := func(want string) {
		t.Helper()
		got, err := r.ReadString('\n')
		if err != nil || got != want+"\n" {
			t.Fatalf("read %q, %v; want %q", got, err, want+"\n")
		}
	}
	for _, l := range []string{"one", "two", "three", "four"} {
		readLine(l)
	}

	appendLog(t, e.appLog, criLine(time.Now(), "stdout", "F", "five"))
	readLine("five")

	// The runtime has written a container's last line by the time it
	// reports the exit; that line must still be served.
	appendLog(t, e.appLog, criLine(time.Now(), "stderr", "F", "last words"))
	e.runtime.setState("app1", runtimeapi.ContainerState_CONTAINER_EXITED)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("follow did not end cleanly: %v", err)
	}
	if string(rest) != "last words\n" {
		t.Errorf("after exit read %q, want the lines written before it", rest)
	}
}

// TestFollowRuntimeError shows that an error after streaming began ends
// the body with its text, as the kubelet does.
func TestFollowRuntimeError(t *testing.T) {
	e := newEnv(t)
	rec := e.get(t, "/containerLogs/ns/web/lost?follow=true")
	if rec.Code != http.StatusOK {
		t.Fatalf("code = %d, want 200", rec.Code)
	}
	body := rec.Body.String()
	if !strings.HasPrefix(body, "one\ntwo\nthree\nfour\n") || !strings.HasSuffix(body, `container "lost" not found`) {
		t.Errorf("body = %q, want the log then the runtime's error", body)
	}
}

// TestFollowClientGone checks that a follow sends its headers before the
// first line, and stops when the client goes away while the container still
// runs.
func TestFollowClientGone(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.handler)

	// Do returns once the headers arrive; the log has no line to send.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/containerLogs/ns/web/quiet?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code = %d, want 200", resp.StatusCode)
	}
	cancel()
	resp.Body.Close()

	// Close waits for the handler to return.
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("handler still following after the client went away")
	}
}
