// Package kuberuntime is the agent's per-pod sync loop: it compares a pod's
// desired containers (ephemeral ones above all) with what the CRI runtime
// reports, plans the actions that close the gap, and carries them out with
// CRI calls.
//
// # Decide, then act
//
// Plan is a pure function from (pod spec, observed podstate.PodState, now)
// to Actions: which sandbox to create, which containers to kill, start or
// hold back in crash-loop backoff. It has no clock and no client, so every
// rule is a row of a table test; the rules it shares with the status (is a
// container a sidecar, are the init containers done, which instance is
// current) are package podstate's. Syncer reads the pod's state through a
// podstate.Observer, calls Plan, executes the Actions in a fixed order
// (kill, remove old containers and sandboxes, create sandbox, start
// containers) with one podSync carrying what the steps share, and hands
// the state it observes afterwards to a StatusSink.
//
// # Exactly once
//
// Whether a container was started is read from what outlives the agent,
// never from memory: every container carries the pod UID, its name and its
// type in CRI labels and annotations (package criconfig), and an ephemeral
// container also gets a durable start record (podstate.RecordStore, under
// the pod's directory) once CreateContainer returned and before
// StartContainer. An ephemeral container is created only when no witness
// says it was: no runtime container of its name in any sandbox, no record,
// and no container in the pod's reported status (podstate.EphemeralCreated).
// One the runtime lost (crictl rm, a removed sandbox) is reported
// terminated, with one ContainerLost Event, and never created again. At
// least once holds too: a container created but never started is started,
// not created again; one whose start the agent's own death aborted
// (podstate.AbortedStart) is replaced, at most podstate.MaxReplacements
// times, each counted in the record first; one whose start the runtime
// refused stays exited. Ephemeral containers are planned first and apart
// from the pod's own containers, so a pod stuck in Init, crash-looping or
// whose volumes fail can still be debugged. Restart counts and crash-loop
// backoff are derived from the runtime's containers too, so an agent
// restart changes nothing.
//
// # Triggers and retries
//
// Workers run syncs: any trigger (the pod informer, a relist that saw a
// container change state, a timer) only enqueues the pod's UID, and the
// queue guarantees one sync at a time per pod while different pods sync in
// parallel. A sync that returns an error (a container failed to start, a
// volume could not be prepared) is retried with per-pod exponential backoff
// from 500ms to 30s; during it, a change of the pod's status alone (such as
// the failure's own status write) does not sync it, a change of its spec
// does. A successful one is synced again after the crash-loop
// backoff it waits for, or after the resync period. A pod gone from the API
// and, observed again after its removal, from the runtime, with its volumes
// torn down, is forgotten (SyncResult.Gone): no timer, no backoff, no
// relist memory of it, and every collaborator's ForgetPod was called, so
// nothing grows with the pods that came and went. Image pulls keep their
// own backoff (package images), so a retry during it reports
// ImagePullBackOff without pulling.
//
// # Health
//
// Workers answer two checks of the agent's /healthz, the kubelet's rules:
// SyncLoopHealthy fails when pods wait in the queue and no worker took or
// finished a sync for max(2 × the resync period, 5m) (an idle loop, or
// one long sync with nothing else to do, is healthy); RelistHealthy fails
// when no relist completed for 3m ("pleg was last seen active ...").
// Both pass until Run starts.
//
// # Probes
//
// With a Prober (Deps.Prober, pkg/prober's Manager), every observation is
// followed by Prober.UpdatePod, which starts and stops the probes of the
// running containers and whose verdicts the Syncer puts into
// PodState.Probes. Plan stays pure: it reads a liveness or startup failure
// there and kills the container with the kubelet's message and the probe's
// own terminationGracePeriodSeconds; its restart policy then restarts it,
// with backoff. The status reads ready and started from the same field.
// Without a Prober, every running container is started and ready.
//
// # Embedding
//
// Everything the loop needs is an interface declared in interfaces.go:
// Runtime (k8s.io/cri-client's RuntimeService fits), PodSource, Images,
// Volumes, Secrets, StatusSink and Recorder, and the optional Prober. Example shows the loop driven
// with fakes. The package keeps no globals; Metrics are registered with
// the registry the embedder gives.
//
// It does not watch the API server, pull images, prepare volumes, send
// statuses or answer which container a log or debug session means:
// packages podsource, images, volume, status and podstate (Lookup) do, and
// cmd/ephemeral-agent wires them together.
package kuberuntime
