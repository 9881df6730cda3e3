// Package server serves the agent's HTTP endpoints: the kubelet-style API on
// the TLS port (/healthz, /metrics and the routes it is given, such as
// /containerLogs/) and a plain /healthz on a
// loopback port for local probes, as the kubelet does on 10248.
//
// Every request on the TLS port must present a client certificate signed by
// the client CA; until delegated authentication and authorization land, that
// is the only way in, and without a client CA nothing but the loopback
// /healthz is served.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Check is one health check; /healthz fails when any check fails.
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
	// TLSCertFile and TLSKeyFile are the serving certificate and key.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile verifies client certificates; empty rejects every client.
	ClientCAFile string
	// HealthzAddress and HealthzPort serve a plain-HTTP /healthz; port 0
	// disables it.
	HealthzAddress string
	HealthzPort    int
	// Gatherer supplies /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Handlers are further API routes, by ServeMux pattern (e.g.
	// "/containerLogs/"), served to authenticated clients like the rest.
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
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	var servers []*http.Server
	apiLn, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Address, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen for the agent API: %w", err)
	}
	api := &http.Server{Handler: requireClientCert(s.apiMux()), TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	servers = append(servers, api)
	serve := []func() error{func() error { return api.ServeTLS(apiLn, "", "") }}
	logger.Info("Serving the agent API", "address", apiLn.Addr().String())

	if s.cfg.HealthzPort != 0 {
		hzLn, err := net.Listen("tcp", net.JoinHostPort(s.cfg.HealthzAddress, strconv.Itoa(s.cfg.HealthzPort)))
		if err != nil {
			apiLn.Close()
			return fmt.Errorf("listen for healthz: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", s.healthz())
		hz := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Asked for but not demanded at the handshake, so that a request
		// without one gets an HTTP 401 it can read instead of a TLS alert.
		ClientAuth: tls.VerifyClientCertIfGiven,
	}
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", s.cfg.ClientCAFile)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

func (s *Server) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", s.healthz())
	if s.cfg.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	for pattern, h := range s.cfg.Handlers {
		mux.Handle(pattern, h)
	}
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

// requireClientCert rejects requests without a verified client certificate.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
