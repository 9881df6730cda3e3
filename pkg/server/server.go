// Package server serves the agent's HTTP endpoints: the kubelet-style API on
// the TLS port (/healthz, /metrics, /metrics/resource, /pods, /runningpods/,
// /stats/summary, the routes it is given, such as /containerLogs/, /exec/,
// /attach/ and /portForward/, and the agent's own read-only /debugpolicy)
// and a plain /healthz on a loopback port for local probes, as the kubelet
// does on 10248.
//
// Every request on the TLS port, /healthz included as in the kubelet, goes
// through Config.Auth (package auth: delegated authentication and
// authorization) before it reaches a route; there is no way around it.
// Without --tls-cert-file the server makes itself a self-signed certificate
// (EnsureSelfSignedCert).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Check is one health check; /healthz fails when any check fails, with
// "[-]NAME failed: ERROR" in its body for each failed one. Check must be
// quick: it runs on every request, from what others observed.
type Check struct {
	Name  string
	Check func() error
}

// Config says where and how to listen.
type Config struct {
	// Address and Port are the TLS API's listen address, as the kubelet's
	// --address and --port.
	Address string
	Port    int
	// TLSCertFile and TLSKeyFile are the serving certificate and key. When
	// both are empty, a self-signed pair in CertDir covering NodeName and
	// NodeIPs is used (and made when missing).
	TLSCertFile, TLSKeyFile string
	CertDir                 string
	NodeName                string
	NodeIPs                 []net.IP
	// Auth guards every route of the TLS API (auth.Guard.Wrap); it is
	// required, so that no configuration serves the API unguarded.
	Auth func(http.Handler) http.Handler
	// HealthzAddress and HealthzPort serve a plain-HTTP /healthz; port 0
	// disables it.
	HealthzAddress string
	HealthzPort    int
	// Gatherer supplies /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Pods serves /pods; nil leaves it out.
	Pods PodLister
	// Runtime serves /runningpods/; nil leaves it out.
	Runtime ContainerLister
	// Stats serves /stats/summary; nil leaves it out.
	Stats SummaryProvider
	// ResourceMetrics supplies /metrics/resource (the kubelet's resource
	// metrics, on a registry of their own); nil leaves it out.
	ResourceMetrics prometheus.Gatherer
	// DebugPolicy serves GET /debugpolicy, the node's debug policy in
	// force; nil serves a snapshot with no policy (everything allowed).
	// The route is always there, so that a client can tell a node without
	// a policy from an agent that predates it.
	DebugPolicy DebugPolicy
	// Handlers are further API routes, by ServeMux pattern (e.g.
	// "/containerLogs/"), served to authorized clients like the rest.
	Handlers map[string]http.Handler
}

// Server is the agent's HTTP server pair.
type Server struct {
	cfg    Config
	checks []Check
}

// New returns a Server that answers /healthz from checks.
func New(cfg Config, checks ...Check) *Server {
	return &Server{cfg: cfg, checks: checks}
}

// Run serves until ctx ends, then shuts down gracefully. It returns an error
// when a listener cannot be opened or fails while serving.
func (s *Server) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if s.cfg.Auth == nil {
		return errors.New("no authentication and authorization configured for the agent API")
	}
	tlsConfig, err := s.tlsConfig(ctx)
	if err != nil {
		return err
	}
	var servers []*http.Server
	apiLn, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Address, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen for the agent API: %w", err)
	}
	api := &http.Server{
		Handler:   s.cfg.Auth(s.apiMux()),
		TLSConfig: tlsConfig,
		// Requests live in ctx, so that stopping the agent ends long-running
		// ones (log follows, debug sessions) instead of waiting for them.
		// No WriteTimeout: those last as long as their client wants.
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	servers = append(servers, api)
	serve := []func() error{func() error { return api.ServeTLS(apiLn, "", "") }}
	logger.Info("Serving the agent API", "address", apiLn.Addr().String())

	if s.cfg.HealthzPort != 0 {
		hzLn, err := net.Listen("tcp", net.JoinHostPort(s.cfg.HealthzAddress, strconv.Itoa(s.cfg.HealthzPort)))
		if err != nil {
			apiLn.Close()
			return fmt.Errorf("listen for healthz: %w", err)
		}
		hz := &http.Server{Handler: s.healthzMux(), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hz)
		serve = append(serve, func() error { return hz.Serve(hzLn) })
		logger.Info("Serving healthz", "address", hzLn.Addr().String())
	}

	errs := make(chan error, len(serve))
	var wg sync.WaitGroup
	for _, f := range serve {
		wg.Go(func() {
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
	}
	wg.Wait()
	return runErr
}

func (s *Server) tlsConfig(ctx context.Context) (*tls.Config, error) {
	certFile, keyFile := s.cfg.TLSCertFile, s.cfg.TLSKeyFile
	if certFile == "" && keyFile == "" {
		var generated bool
		var err error
		certFile, keyFile, generated, err = EnsureSelfSignedCert(s.cfg.CertDir, s.cfg.NodeName, s.cfg.NodeIPs, time.Now())
		if err != nil {
			return nil, err
		}
		if generated {
			klog.FromContext(ctx).Info("Generated a self-signed serving certificate", "cert", certFile, "key", keyFile, "host", s.cfg.NodeName, "ips", s.cfg.NodeIPs)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Asked for but verified by the authenticator, as the kubelet does:
		// a request without a valid one gets a 401 it can read instead of a
		// TLS alert, and may still present a bearer token.
		ClientAuth: tls.RequestClientCert,
	}, nil
}

func (s *Server) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", s.healthz())
	if s.cfg.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	if s.cfg.Pods != nil {
		mux.Handle("GET /pods", podsHandler(s.cfg.Pods))
	}
	if s.cfg.Runtime != nil {
		rp := runningPodsHandler(s.cfg.Runtime)
		mux.Handle("GET /runningpods", rp)
		mux.Handle("GET /runningpods/{$}", rp)
	}
	if s.cfg.Stats != nil {
		mux.Handle("GET /stats/summary", summaryHandler(s.cfg.Stats))
	}
	if s.cfg.ResourceMetrics != nil {
		mux.Handle("/metrics/resource", promhttp.HandlerFor(s.cfg.ResourceMetrics, promhttp.HandlerOpts{}))
	}
	mux.Handle("GET "+DebugPolicyPath, debugPolicyHandler(s.cfg.DebugPolicy))
	for pattern, h := range s.cfg.Handlers {
		mux.Handle(pattern, h)
	}
	return mux
}

// healthzMux serves the plain healthz port: /healthz alone, with the same
// checks as the TLS API's.
func (s *Server) healthzMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", s.healthz())
	return mux
}

// healthz answers "ok" when every check passes, and 500 naming the failed
// checks otherwise, in the style of the Kubernetes healthz endpoints.
func (s *Server) healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var failed []string
		for _, c := range s.checks {
			if err := c.Check(); err != nil {
				failed = append(failed, fmt.Sprintf("[-]%s failed: %v", c.Name, err))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if len(failed) > 0 {
			klog.FromContext(r.Context()).V(2).Info("Healthz check failed", "checks", failed)
			w.WriteHeader(http.StatusInternalServerError)
			for _, f := range failed {
				fmt.Fprintln(w, f)
			}
			fmt.Fprintln(w, "healthz check failed")
			return
		}
		fmt.Fprint(w, "ok")
	})
}
