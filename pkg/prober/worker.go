package prober

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// worker runs one probe of one running container.
type worker struct {
	m     *Manager
	c     *container
	typ   podstate.ProbeType
	probe *v1.Probe
	spec  *v1.Container
	ref   *v1.ObjectReference
	// containerID, startedAt and podIP are the container's, fixed for
	// its life.
	containerID string
	startedAt   time.Time
	podIP       string
	results     tally
}

// run probes every periodSeconds until ctx ends or the probe is done.
func (w *worker) run(ctx context.Context) {
	ticker := w.m.clock.NewTicker(seconds(w.probe.PeriodSeconds, 10*time.Second))
	defer ticker.Stop()
	for w.doProbe(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// doProbe probes once, if it is time, and reports whether to go on.
func (w *worker) doProbe(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if !w.startedAt.IsZero() && w.m.clock.Since(w.startedAt) < time.Duration(w.probe.InitialDelaySeconds)*time.Second {
		return true
	}
	// A startup probe holds the others back until it succeeds.
	if w.typ != podstate.Startup && !w.m.isStarted(w.c) {
		return true
	}
	logger := klog.FromContext(ctx)
	success, output, err := w.handle(ctx)
	if ctx.Err() != nil {
		// Stopped while probing: the container is gone.
		return false
	}
	pod, container, ns := w.ref.Name, w.spec.Name, w.ref.Namespace
	if err != nil {
		// The probe could not run: no verdict, as the kubelet.
		w.m.metrics.observe(string(w.typ), resultUnknown, container, pod, ns)
		logger.V(1).Info("Probe errored", "err", err)
		w.event("%s probe errored: %v", w.typ, err)
		return true
	}
	if success {
		w.m.metrics.observe(string(w.typ), resultSuccess, container, pod, ns)
		logger.V(4).Info("Probe succeeded")
	} else {
		w.m.metrics.observe(string(w.typ), resultFailure, container, pod, ns)
		logger.V(1).Info("Probe failed", "output", output)
		w.event("%s probe failed: %s", w.typ, output)
	}
	if !w.results.add(success, w.probe.SuccessThreshold, w.probe.FailureThreshold) {
		return true
	}
	return w.m.setVerdict(ctx, w.c, w.typ, success, output)
}

// event emits an Unhealthy Warning Event on the container.
func (w *worker) event(format string, typ podstate.ProbeType, arg any) {
	if w.m.recorder != nil {
		w.m.recorder.Eventf(w.ref, v1.EventTypeWarning, ReasonUnhealthy, format, typ, arg)
	}
}

// handle runs the probe's handler once.
func (w *worker) handle(ctx context.Context) (bool, string, error) {
	timeout := seconds(w.probe.TimeoutSeconds, time.Second)
	h := &w.probe.ProbeHandler
	switch {
	case h.Exec != nil:
		if w.m.runtime == nil {
			return false, "", fmt.Errorf("no runtime for exec probes")
		}
		return execProbe(ctx, w.m.runtime, w.containerID, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		u, err := httpURL(h.HTTPGet, w.spec, w.podIP)
		if err != nil {
			return false, "", err
		}
		return httpProbe(ctx, u, httpHeaders(h.HTTPGet), timeout)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port.String(), h.TCPSocket.Port.IntValue(), w.spec)
		if err != nil {
			return false, "", err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = w.podIP
		}
		return tcpProbe(ctx, host, port, timeout)
	case h.GRPC != nil:
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		return grpcProbe(ctx, w.podIP, int(h.GRPC.Port), service, timeout)
	}
	return false, "", fmt.Errorf("probe of container %s has no handler", w.spec.Name)
}
