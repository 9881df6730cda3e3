// Command pause is the init process of a pod sandbox in the test
// environment: it holds the pod's namespaces open and does nothing else.
//
// As PID 1 of a shared PID namespace it inherits every orphaned process of
// the pod, so it must reap them or they stay zombies until the pod dies. It
// exits 0 on SIGINT or SIGTERM: the kernel drops signals that PID 1 has no
// handler for, so without one a polite stop would have to wait for SIGKILL.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// A buffer of one is enough: a dropped SIGCHLD always finds an earlier
	// one still queued, and each wakeup reaps every exited child.
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)

	for {
		select {
		case <-children:
			reap()
		case sig := <-stop:
			fmt.Fprintf(os.Stderr, "shutting down, got signal %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every child that has exited, without blocking on those that
// still run.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			// ECHILD: no children at all; 0: none has exited yet.
			return
		}
	}
}
