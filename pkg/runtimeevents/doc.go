// Package runtimeevents watches the container runtime's container
// lifecycle events (a container or sandbox started, exited, was OOM-killed,
// was removed) and turns each into a request to sync the pod it belongs
// to. It is what lets the agent notice a container's exit at once instead
// of at the next relist of the runtime.
//
// Events are triggers, level-triggered as controller-runtime's reconcile
// requests: an event names a pod to sync; the sync reads the runtime's
// state itself. One exception: containerd's CRI plugin reports a
// container's exit only after it deleted the task, tens of milliseconds
// after containerd announced it, so the watcher keeps each announced exit
// (Watcher.Exited) for podstate's Observer to report a debug container's
// exit before the runtime does. An event the watcher cannot map to a
// pod asks for a relist instead, which finds every change.
//
// Two sources, tried in this order:
//   - CRI GetContainerEvents, whose events carry the pod sandbox's status
//     and so the pod's UID. Runtimes that do not serve it (containerd
//     before 1.7) answer Unimplemented; the watcher then uses the next
//     source for good.
//   - containerd's own event service (its gRPC API, ContainerdEvents,
//     namespace k8s.io), whose events carry a container or
//     sandbox ID only: the ID is mapped to its pod from what the last relist
//     saw, else from the runtime's labels on the object (ListContainers,
//     ListPodSandbox filtered by ID), else a relist is asked for.
//
// A stream that breaks (a runtime restart) is reopened with backoff. Every
// (re)connection asks for one relist, so that nothing that happened while
// no stream was open is missed; the sink is told whether a stream is
// connected, and relists seldom while one is. The package is not the
// relist: it keeps no state of pods, only the announced exits of
// containers until they are removed.
package runtimeevents
