package kuberuntime

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
)

// EventSource watches the runtime's container lifecycle events (a
// container started, exited, was removed) and tells sink which pod to sync;
// pkg/runtimeevents' Watcher is one. Run returns when ctx ends. An event
// only triggers a sync, as any other trigger: the sync reads the runtime's
// state itself and trusts nothing an event carries.
type EventSource interface {
	Run(ctx context.Context, sink EventSink)
}

// EventSink is what an EventSource may ask of the workers. Its methods
// return at once: none waits for a sync or a relist.
type EventSink interface {
	// Enqueue asks for a sync of the pod with that UID.
	Enqueue(uid types.UID)
	// Relist asks for a relist at once: an event the source cannot map to
	// a pod, or a (re)connection after which anything that happened while
	// the stream was down must be found.
	Relist()
	// Connected says whether an event stream is connected: while it is,
	// the runtime is relisted every RelistPeriod, else every
	// RelistPeriodWithoutEvents. Either change also asks for a relist.
	Connected(connected bool)
	// PodOf returns the pod the last relist saw the sandbox or container
	// with that ID belong to; false if it saw no such object.
	PodOf(id string) (types.UID, bool)
}

// eventSink is the Workers' side of their EventSource.
type eventSink struct{ w *Workers }

func (s eventSink) Enqueue(uid types.UID)             { s.w.queue.Add(uid) }
func (s eventSink) Relist()                           { s.w.requestRelist() }
func (s eventSink) PodOf(id string) (types.UID, bool) { return s.w.podOf(id) }

func (s eventSink) Connected(connected bool) {
	s.w.eventsConnected.Store(connected)
	s.w.requestRelist()
}
