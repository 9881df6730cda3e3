package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/runtimeevents"
)

// newEventSource returns the watcher of the runtime's container events:
// CRI GetContainerEvents on runtime, else containerd's event service on
// the CRI endpoint's socket (containerd serves both there). The containerd
// connection is made lazily: a runtime that is not containerd only fails its
// subscription, and the relist alone notices changes. close closes that
// connection.
func newEventSource(endpoint string, runtime runtimeevents.Runtime, reg prometheus.Registerer) (eventSource, func(), error) {
	client, err := runtimeevents.DialContainerd(endpoint, runtimeevents.DefaultNamespace)
	if err != nil {
		return eventSource{}, nil, fmt.Errorf("runtime events: %w", err)
	}
	w := runtimeevents.New(runtimeevents.Options{
		Runtime:    runtime,
		Containerd: client,
		Registerer: reg,
	})
	closeClient := func() {
		if err := client.Close(); err != nil {
			klog.Background().V(2).Info("Failed to close the connection to containerd's event service", "err", err)
		}
	}
	return eventSource{w}, closeClient, nil
}

// eventSource adapts the watcher to the workers' interface (the workers'
// sink is the watcher's) and to the observer's (podstate.ExitSource).
type eventSource struct{ w *runtimeevents.Watcher }

func (s eventSource) Run(ctx context.Context, sink kuberuntime.EventSink) { s.w.Run(ctx, sink) }

func (s eventSource) Exited(id string) (code int32, at time.Time, oom, ok bool) {
	return s.w.Exited(id)
}
