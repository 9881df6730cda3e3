package prober

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	remote "k8s.io/cri-client/pkg"
	utilexec "k8s.io/utils/exec"
)

// fakeExec answers ExecSync with the result set for a command's first word.
type fakeExec struct {
	results map[string]execResult
}

type execResult struct {
	out string
	err error
}

func (f *fakeExec) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	r := f.results[cmd[0]]
	return []byte(r.out), nil, r.err
}

func TestExecProbe(t *testing.T) {
	rt := &fakeExec{results: map[string]execResult{
		"true":  {out: "fine\n"},
		"false": {out: "broken\n", err: utilexec.CodeExitError{Err: errors.New("exited with 1"), Code: 1}},
		"slow":  {err: remote.ErrCommandTimedOut},
		"gone":  {err: errors.New("container not found")},
	}}
	tests := []struct {
		cmd     string
		success bool
		output  string
		err     bool
	}{
		{"true", true, "fine\n", false},
		{"false", false, "broken\n", false},
		{"slow", false, `command "slow" timed out`, false},
		{"gone", false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			ok, out, err := execProbe(context.Background(), rt, "c1", []string{tt.cmd}, time.Second)
			if ok != tt.success || out != tt.output || (err != nil) != tt.err {
				t.Errorf("execProbe = %v, %q, %v; want %v, %q, error %v", ok, out, err, tt.success, tt.output, tt.err)
			}
		})
	}
}

func TestHTTPProbe(t *testing.T) {
	var gotUA, gotHeader string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer other.Close()
	otherURL, _ := url.Parse(other.URL)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotHeader = r.UserAgent(), r.Header.Get("X-Custom")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/redirect-local", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	// Another host (by name): not followed, the 302 itself is a success.
	mux.HandleFunc("/redirect-away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+otherURL.Port()+"/", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host, portStr, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(portStr)
	c := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}

	tests := []struct {
		name    string
		action  v1.HTTPGetAction
		timeout time.Duration
		success bool
		output  string
	}{
		{"2xx by port name", v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http"), HTTPHeaders: []v1.HTTPHeader{{Name: "X-Custom", Value: "v"}}}, time.Second, true, "ok"},
		{"5xx", v1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)}, time.Second, false, "HTTP probe failed with statuscode: 503"},
		{"same-host redirect followed", v1.HTTPGetAction{Path: "/redirect-local", Port: intstr.FromInt(port)}, time.Second, false, "HTTP probe failed with statuscode: 503"},
		{"other-host redirect not followed", v1.HTTPGetAction{Path: "/redirect-away", Port: intstr.FromInt(port)}, time.Second, true, ""},
		{"timeout", v1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)}, 50 * time.Millisecond, false, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pu, err := httpURL(&tt.action, c, host)
			if err != nil {
				t.Fatal(err)
			}
			ok, out, err := httpProbe(context.Background(), pu, httpHeaders(&tt.action), tt.timeout)
			if err != nil || ok != tt.success || !strings.Contains(out, tt.output) {
				t.Errorf("httpProbe(%s) = %v, %q, %v; want %v, %q", pu, ok, out, err, tt.success, tt.output)
			}
		})
	}
	if gotUA != UserAgent || gotHeader != "v" {
		t.Errorf("User-Agent %q, X-Custom %q; want %q, v", gotUA, gotHeader, UserAgent)
	}
	if _, err := httpURL(&v1.HTTPGetAction{Port: intstr.FromString("nope")}, c, host); err == nil {
		t.Error("an unknown port name resolved")
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if ok, out, err := tcpProbe(context.Background(), "127.0.0.1", port, time.Second); !ok || err != nil {
		t.Errorf("open port: %v, %q, %v", ok, out, err)
	}
	ln.Close()
	if ok, out, err := tcpProbe(context.Background(), "127.0.0.1", port, time.Second); ok || err != nil || !strings.Contains(out, "connection refused") {
		t.Errorf("closed port: %v, %q, %v; want a refused failure", ok, out, err)
	}
}

func TestGRPCProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	bare := grpc.NewServer()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bare.Serve(ln2) }()
	defer bare.Stop()

	tests := []struct {
		name    string
		port    int
		service string
		success bool
		output  string
	}{
		{"overall", port, "", true, ""},
		{"serving service", port, "up", true, ""},
		{"not serving", port, "down", false, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", port, "nope", false, "error: health rpc probe failed"},
		{"no health service", ln2.Addr().(*net.TCPAddr).Port, "", false, "this server does not implement the grpc health protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, out, err := grpcProbe(context.Background(), "127.0.0.1", tt.port, tt.service, time.Second)
			if err != nil || ok != tt.success || !strings.Contains(out, tt.output) {
				t.Errorf("grpcProbe = %v, %q, %v; want %v, %q", ok, out, err, tt.success, tt.output)
			}
		})
	}
}
