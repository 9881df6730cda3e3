package runtimeevents

import (
	"context"
	"fmt"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
	"k8s.io/klog/v2"
)

// The containerd topics watched: those of a task (a container's or a
// sandbox's process) that starts, exits, is OOM-killed or is deleted, and
// of a container that is removed.
const (
	TopicTaskStart       = "/tasks/start"
	TopicTaskExit        = "/tasks/exit"
	TopicTaskOOM         = "/tasks/oom"
	TopicTaskDelete      = "/tasks/delete"
	TopicContainerDelete = "/containers/delete"
)

// topics are the containerd topics watched.
var topics = []string{TopicTaskStart, TopicTaskExit, TopicTaskOOM, TopicTaskDelete, TopicContainerDelete}

// filters selects the watched topics of namespace; containerd ORs the
// filters and ANDs the terms of one.
func filters(namespace string) []string {
	f := make([]string, 0, len(topics))
	for _, t := range topics {
		f = append(f, fmt.Sprintf("namespace==%q,topic==%q", namespace, t))
	}
	return f
}

// watchContainerd runs one subscription to containerd's events. It counts
// as connected once the subscription is made: containerd's event service
// answers at once when it is down.
func (w *Watcher) watchContainerd(ctx context.Context, sink Sink) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errs := w.opts.Containerd.Subscribe(ctx, filters(w.opts.Namespace)...)
	select {
	case err, ok := <-errs:
		if !ok || err == nil {
			err = errStreamEnded
		}
		return false, err
	default:
	}
	w.connect(ctx, sink, SourceContainerd)
	for {
		select {
		case env := <-evs:
			w.handleContainerd(ctx, sink, env)
		case err, ok := <-errs:
			if !ok || err == nil {
				err = errStreamEnded
			}
			return true, err
		}
	}
}

// handleContainerd asks for a sync of the pod a containerd event concerns.
func (w *Watcher) handleContainerd(ctx context.Context, sink Sink, env *events.Envelope) {
	if env == nil {
		return
	}
	w.metrics.events.WithLabelValues(SourceContainerd, env.Topic).Inc()
	ev, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		// An event of a kind this build does not know: the relist finds
		// what it was about.
		klog.FromContext(ctx).V(2).Info("Failed to decode runtime event", "topic", env.Topic, "err", err)
		sink.Relist()
		return
	}
	id, deleted, ok := containerdTarget(ev)
	klog.FromContext(ctx).V(4).Info("Runtime event", "source", SourceContainerd, "topic", env.Topic, "id", id, "wanted", ok)
	if !ok {
		return
	}
	switch e := ev.(type) {
	case *apievents.TaskExit:
		// The sync this asks for reports the exit from the event itself
		// (Exited): the CRI plugin records it only after deleting the task.
		w.announce(id, int32(e.ExitStatus), e.ExitedAt.AsTime())
	case *apievents.TaskOOM:
		w.announceOOM(id)
	case *apievents.ContainerDelete:
		w.resolve(ctx, sink, id)
		w.forget(id)
		return
	}
	if deleted {
		// The task is gone: once the CRI plugin reports the exit, a sync
		// reads what the event could not give (a log tail as the
		// termination message).
		w.settleAsync(ctx, sink, id)
		return
	}
	w.resolve(ctx, sink, id)
}

// containerdTarget returns the ID of the container or sandbox a containerd
// event concerns, and whether it tells that its task is gone (deleted, so
// that the CRI plugin is about to report the exit); ok is false for an
// event that changes nothing a sync sees: an exec'd process's exit or
// deletion (a probe, kubectl exec), or a kind not watched. It is pure.
func containerdTarget(ev any) (id string, deleted, ok bool) {
	switch e := ev.(type) {
	case *apievents.TaskStart:
		return e.ContainerID, false, true
	case *apievents.TaskExit:
		return e.ContainerID, false, initProcess(e.ContainerID, e.ID)
	case *apievents.TaskOOM:
		return e.ContainerID, false, true
	case *apievents.TaskDelete:
		return e.ContainerID, true, initProcess(e.ContainerID, e.ID)
	case *apievents.ContainerDelete:
		return e.ID, false, true
	}
	return "", false, false
}

// initProcess says whether the process id of container is its init
// process (the container's own), not one exec'd into it.
func initProcess(container, id string) bool {
	return id == "" || id == container
}
