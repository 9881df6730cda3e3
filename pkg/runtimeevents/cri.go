package runtimeevents

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// criEventBuffer is how many CRI events may wait for the watcher: the
// client blocks on a full channel, which holds the stream, not the runtime.
const criEventBuffer = 64

// watchCRI runs one CRI GetContainerEvents stream. The stream counts as
// connected at its first event only: a runtime that does not serve the
// call accepts the stream and fails its first receive, so an open stream
// proves nothing, and until an event comes the relist runs at its pace
// without events.
func (w *Watcher) watchCRI(ctx context.Context, sink Sink) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *runtimeapi.ContainerEventResponse, criEventBuffer)
	done := make(chan error, 1)
	go func() { done <- w.opts.Runtime.GetContainerEvents(ctx, ch, nil) }()
	handle := func(ev *runtimeapi.ContainerEventResponse) {
		if !connected {
			connected = true
			w.connect(ctx, sink, SourceCRI)
		}
		w.handleCRI(ctx, sink, ev)
	}
	for {
		select {
		case ev := <-ch:
			handle(ev)
		case err := <-done:
			// Events received before the stream broke still count.
			for len(ch) > 0 {
				handle(<-ch)
			}
			if err == nil {
				err = errStreamEnded
			}
			return connected, err
		}
	}
}

// handleCRI asks for a sync of the pod a CRI event concerns.
func (w *Watcher) handleCRI(ctx context.Context, sink Sink, ev *runtimeapi.ContainerEventResponse) {
	w.metrics.events.WithLabelValues(SourceCRI, ev.GetContainerEventType().String()).Inc()
	klog.FromContext(ctx).V(4).Info("Runtime event", "source", SourceCRI, "topic", ev.GetContainerEventType().String(), "id", ev.GetContainerId())
	if !criEventWanted(ev.GetContainerEventType()) {
		return
	}
	if uid := podUID(ev.GetPodSandboxStatus().GetLabels()); uid != "" {
		sink.Enqueue(uid)
		return
	}
	w.resolve(ctx, sink, ev.GetContainerId())
}

// criEventWanted says whether a CRI event type may change what a sync
// does. A creation never does: the sync that created the container goes
// on to start it.
func criEventWanted(t runtimeapi.ContainerEventType) bool {
	switch t {
	case runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT:
		return true
	}
	return false
}

// podUID is the pod UID label the agent puts on its sandboxes and
// containers.
func podUID(labels map[string]string) types.UID {
	return types.UID(labels[criconfig.LabelPodUID])
}
