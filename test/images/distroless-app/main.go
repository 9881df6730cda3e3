// Command distroless-app is the application that test pods debug: one static
// binary in an image without a shell, so a debugging session needs an
// ephemeral container.
//
// It serves HTTP ("/" answers a short text line, "/healthz" answers "ok"),
// prints "tick N" to stdout every second so its logs keep moving, and exits 0
// on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "distroless-app: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	// PORT is the default rather than an override so that an explicit
	// -port in the container's args always wins.
	defaultPort := "8080"
	if p := os.Getenv("PORT"); p != "" {
		defaultPort = p
	}
	port := flag.String("port", defaultPort, "TCP port to serve HTTP on (default from $PORT if set)")
	flag.Parse()

	// PID 1 ignores signals it has no handler for, so without this the
	// runtime would have to wait for the grace period and SIGKILL.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	hostname, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from distroless-app on %s\n", hostname)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: ":" + *port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	ticks := 0
	for {
		select {
		case <-ticker.C:
			ticks++
			fmt.Printf("tick %d\n", ticks)
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			fmt.Println("shutting down")
			shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
			defer done()
			if err := srv.Shutdown(shutdownCtx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}
