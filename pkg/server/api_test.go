package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

type podList []*v1.Pod

func (p podList) Pods() []*v1.Pod { return p }

type containerList []*runtimeapi.Container

func (c containerList) ListContainers(_ context.Context, f *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	var out []*runtimeapi.Container
	for _, x := range c {
		if f.GetState() == nil || x.GetState() == f.GetState().GetState() {
			out = append(out, x)
		}
	}
	return out, nil
}

func container(ns, pod, uid, name, image string, state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id: uid + "-" + name, State: state, Image: &runtimeapi.ImageSpec{Image: image},
		Labels: map[string]string{criconfig.LabelPodNamespace: ns, criconfig.LabelPodName: pod, criconfig.LabelPodUID: uid, criconfig.LabelContainerName: name},
	}
}

// userGate lets requests with the X-User header through, as an
// authenticator would, and answers 401 otherwise.
func userGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-User") == "" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func testServer() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}))
	return New(Config{
		Auth:     userGate,
		Gatherer: reg,
		Pods: podList{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}, Spec: v1.PodSpec{NodeName: "node-1"}},
		},
		Runtime: containerList{
			container("ns", "web", "u1", "app", "img:1", runtimeapi.ContainerState_CONTAINER_RUNNING),
			container("ns", "web", "u1", "init", "img:0", runtimeapi.ContainerState_CONTAINER_EXITED),
			container("ns", "web", "u1", "debugger", "busybox", runtimeapi.ContainerState_CONTAINER_RUNNING),
			container("a", "first", "u0", "c", "img", runtimeapi.ContainerState_CONTAINER_RUNNING),
			{Id: "foreign", State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		},
		Handlers: map[string]http.Handler{
			"/exec/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "exec "+r.URL.Path) }),
		},
	}, Check{Name: "ping", Check: func() error { return nil }})
}

func TestAPIRoutes(t *testing.T) {
	h := testServer()
	api := h.cfg.Auth(h.apiMux())
	for _, tc := range []struct {
		method, path string
		anonymous    bool
		wantCode     int
		wantBody     string
	}{
		// Every route, healthz included, is behind Auth.
		{"GET", "/healthz", true, http.StatusUnauthorized, "Unauthorized"},
		{"POST", "/exec/ns/web/app", true, http.StatusUnauthorized, "Unauthorized"},
		{"GET", "/nothing", true, http.StatusUnauthorized, "Unauthorized"},
		{"GET", "/debugpolicy", true, http.StatusUnauthorized, "Unauthorized"},
		{"GET", "/healthz", false, http.StatusOK, "ok"},
		{"GET", "/metrics", false, http.StatusOK, "test_total 0"},
		{"POST", "/exec/ns/web/app", false, http.StatusOK, "exec /exec/ns/web/app"},
		{"GET", "/pods", false, http.StatusOK, `"kind":"PodList","apiVersion":"v1"`},
		{"GET", "/runningpods/", false, http.StatusOK, `"kind":"PodList","apiVersion":"v1"`},
		{"GET", "/runningpods", false, http.StatusOK, `"kind":"PodList","apiVersion":"v1"`},
		{"POST", "/pods", false, http.StatusMethodNotAllowed, ""},
		{"GET", "/debugpolicy", false, http.StatusOK, "{}"},
		{"POST", "/debugpolicy", false, http.StatusMethodNotAllowed, ""},
		{"GET", "/runningpods/x", false, http.StatusNotFound, ""},
		{"GET", "/nothing", false, http.StatusNotFound, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			r := httptest.NewRequest(tc.method, tc.path, nil).WithContext(ctx)
			if !tc.anonymous {
				r.Header.Set("X-User", "alice")
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestPodLists(t *testing.T) {
	h := testServer()
	api := h.apiMux()
	get := func(path string) v1.PodList {
		t.Helper()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		var l v1.PodList
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	pods := get("/pods")
	if len(pods.Items) != 1 || pods.Items[0].Name != "web" || pods.Items[0].Spec.NodeName != "node-1" {
		t.Errorf("/pods = %+v", pods.Items)
	}
	running := get("/runningpods/")
	var got []string
	for _, p := range running.Items {
		var cs []string
		for _, c := range p.Spec.Containers {
			cs = append(cs, c.Name+"="+c.Image)
		}
		got = append(got, fmt.Sprintf("%s/%s(%s):%s", p.Namespace, p.Name, p.UID, strings.Join(cs, ",")))
	}
	want := "a/first(u0):c=img ns/web(u1):app=img:1,debugger=busybox"
	if strings.Join(got, " ") != want {
		t.Errorf("/runningpods/ = %v, want %s", got, want)
	}
}

func TestRunRequiresAuth(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	err := New(Config{}).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "no authentication") {
		t.Errorf("Run without Auth = %v, want a refusal", err)
	}
}

// TestRunSelfSigned serves TLS with a self-signed certificate made at
// start, and stops when its context ends.
func TestRunSelfSigned(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	port := freePort(t)
	dir := t.TempDir()
	s := New(Config{
		Address: "127.0.0.1", Port: port, CertDir: dir, NodeName: "node-1", NodeIPs: []net.IP{net.ParseIP("127.0.0.1")},
		Auth: userGate,
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = client.Get(url); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Unauthorized") {
		t.Errorf("got %d %q, want 401", resp.StatusCode, body)
	}
	if leaf := resp.TLS.PeerCertificates[0]; leaf.VerifyHostname("node-1") != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("serving certificate names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
