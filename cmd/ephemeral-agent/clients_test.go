package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
)

func TestHeartbeatTimeout(t *testing.T) {
	for _, tc := range []struct {
		frequency, lease, want time.Duration
	}{
		{10 * time.Second, 40 * time.Second, 10 * time.Second}, // the defaults
		{time.Minute, 40 * time.Second, 40 * time.Second},      // capped by the lease
		{40 * time.Second, 40 * time.Second, 40 * time.Second},
	} {
		if got := heartbeatTimeout(tc.frequency, tc.lease); got != tc.want {
			t.Errorf("heartbeatTimeout(%s, %s) = %s, want %s", tc.frequency, tc.lease, got, tc.want)
		}
	}
}

// hungServer is an HTTP/2 API server that never answers; it counts the
// connections made to it.
func hungServer(t *testing.T) (*rest.Config, *atomic.Int32) {
	t.Helper()
	stop := make(chan struct{})
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("request over HTTP/%d, want HTTP/2 as client-go speaks to API servers", r.ProtoMajor)
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, &conns
}

// TestClientsGiveUpOnHungServer: a hung API server (a connection a
// load-balancer failover left open) holds no call longer than its client's
// timeout, and the heartbeat then dials a new connection rather than sending
// its next renewal down the dead one.
func TestClientsGiveUpOnHungServer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cfg, conns := hungServer(t)
	const hbTimeout, apiTimeout = 300 * time.Millisecond, 600 * time.Millisecond
	clients, err := newAPIClients(ctx, cfg, clientOptions{QPS: 50, Burst: 100, RequestTimeout: apiTimeout, HeartbeatTimeout: hbTimeout})
	if err != nil {
		t.Fatal(err)
	}
	within := func(name string, timeout time.Duration, call func() error) {
		t.Helper()
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s: no error from a server that never answers", name)
		}
		if took < timeout-50*time.Millisecond || took > timeout+2*time.Second {
			t.Errorf("%s: gave up after %s, want about %s", name, took, timeout)
		}
	}
	within("lease renewal", hbTimeout, func() error {
		_, err := clients.heartbeat.CoordinationV1().Leases("kube-node-lease").Get(ctx, "n", metav1.GetOptions{})
		return err
	})
	within("node status", hbTimeout, func() error {
		_, err := clients.heartbeat.CoreV1().Nodes().PatchStatus(ctx, "n", []byte(`{}`))
		return err
	})
	if n := conns.Load(); n != 2 {
		t.Errorf("heartbeat made %d connections for two timed-out requests, want 2 (a new one after a timeout)", n)
	}
	within("pod status", apiTimeout, func() error {
		_, err := clients.api.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
		return err
	})
	within("event", apiTimeout, func() error {
		_, err := clients.events.CoreV1().Events("ns").Get(ctx, "e", metav1.GetOptions{})
		return err
	})
}

// TestHeartbeatHasBudgetOfItsOwn: API calls that spent the --kube-api-qps
// budget do not hold back the heartbeat; informers share the budget of the
// other calls.
func TestHeartbeatHasBudgetOfItsOwn(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n"}}`)
	}))
	t.Cleanup(srv.Close)
	clients, err := newAPIClients(ctx, &rest.Config{Host: srv.URL}, clientOptions{QPS: 0.001, Burst: 1, RequestTimeout: time.Minute, HeartbeatTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.api.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := clients.watch.CoreV1().Nodes().List(short, metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "rate limiter") {
		t.Errorf("informer list after the budget is spent: err %v, want it held by the shared rate limiter", err)
	}
	start := time.Now()
	for range 20 {
		if _, err := clients.heartbeat.CoreV1().Nodes().Get(ctx, "n", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("20 heartbeat calls took %s: held by a rate limiter", took)
	}
}

// watchServer serves the pods of an informer: pod a at once, pod b on the
// open watch after delay. It counts the watch requests.
func watchServer(t *testing.T, delay time.Duration) (*rest.Config, *atomic.Int32) {
	t.Helper()
	stop := make(chan struct{})
	var watches atomic.Int32
	pod := func(name, rv string) string {
		return fmt.Sprintf(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":%q,"namespace":"ns","uid":%q,"resourceVersion":%q}}`, name, name, rv)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		if q.Get("watch") != "true" {
			fmt.Fprintf(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[%s]}`, pod("a", "1"))
			return
		}
		watches.Add(1)
		t.Logf("watch %s", r.URL.RawQuery)
		flusher := w.(http.Flusher)
		if q.Get("sendInitialEvents") == "true" {
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", pod("a", "1"))
			fmt.Fprint(w, `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"1","annotations":{"k8s.io/initial-events-end":"true"}}}}`+"\n")
		}
		flusher.Flush()
		select {
		case <-time.After(delay):
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", pod("b", "2"))
			flusher.Flush()
		case <-r.Context().Done():
			return
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return &rest.Config{Host: srv.URL}, &watches
}

// TestInformerWatchOutlivesRequestTimeout: the request timeout of the other
// calls does not cut the informers' watches (rest.Config.Timeout would, every
// timeout, and the reflector would reopen them over and over).
func TestInformerWatchOutlivesRequestTimeout(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const timeout = 200 * time.Millisecond
	cfg, watches := watchServer(t, 5*timeout)
	clients, err := newAPIClients(ctx, cfg, clientOptions{RequestTimeout: timeout, HeartbeatTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(clients.watch, 0)
	pods := factory.Core().V1().Pods()
	informer := pods.Informer()
	defer factory.Shutdown()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory.StartWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("pod cache did not sync")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := pods.Lister().Pods("ns").Get("b"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod b, sent on the watch after %s, never arrived (%d watches)", 5*timeout, watches.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := watches.Load(); n != 1 {
		t.Errorf("informer opened %d watches, want 1 left open past the request timeout", n)
	}
}
