// Package status computes pod and container statuses (ephemeral container
// statuses above all) from the pod's observed runtime state, and sends them
// to the API server.
//
// Compute is a pure function of the pod (its spec, and its status as the
// API holds it), its podstate.PodState, the Waiting reasons of containers
// that did not start, the node's addresses and the time: phase, conditions,
// addresses and one status per container of the spec, with the kubelet's
// reasons. It reads the init-done, sidecar and exactly-once rules from
// package podstate, as the sync loop's plan does, so the status never says
// what the plan does not do:
//
//   - A running regular container or sidecar is started and ready as its
//     probes say (PodState.Probes, filled by the sync loop's prober): not
//     started until its startup probe succeeds, not ready until its
//     readiness probe does; without a prober, as soon as it runs. The
//     ContainersReady and Ready conditions follow, sidecars included.
//   - An exited container is Terminated with the runtime's own reason and
//     message (StartError with exit code 128 for a start the runtime
//     refused, OOMKilled, ...); Completed (exit 0) or Error only when the
//     runtime gives none.
//   - An ephemeral container is never created twice. One that was created
//     (podstate.EphemeralCreated: a runtime container, a start record or
//     the reported status says so) and that the runtime no longer has is
//     Terminated: the terminated state the API already holds, exactly, else
//     exit code 137, reason ContainerStatusUnknown and MessageEphemeralLost,
//     with the container ID of the reported status or of the start record.
//   - An ephemeral container in the runtime's CONTAINER_UNKNOWN state is
//     Terminated too, with the kubelet's reason, message and exit code for
//     a container it lost track of (ContainerStatusUnknown, 137). Regular
//     and init containers in that state are Waiting, as the kubelet mostly
//     reports them: whether they run again is the plan's call.
//   - An ephemeral container whose start the agent's own death aborted,
//     and that the plan creates again (podstate.AbortedStart, within
//     podstate.MaxReplacements), is Waiting, not Terminated.
//
// Statuses never go backwards (NoRegression, applied by Compute against the
// pod's status and by Manager against the cached one before each patch): a
// container that never runs again once terminated (every ephemeral
// container; a regular or init container under restart policy Never, or
// OnFailure after exit 0) keeps its Terminated state, container ID
// included, and one that ran is never reported Waiting again; their
// restart counts never go down, an ephemeral container's is always 0; a
// terminal phase stays. The API server refuses those transitions, and with
// them the whole status.
//
// Manager sends them. Statuses are coalesced per pod: only the newest one
// is kept and sent, so intermediate ones may be skipped, never the last. Each
// is a strategic-merge patch of pods/status from the status the agent's
// cache holds, carrying the pod's UID as a precondition, so a status never
// lands on a pod that replaced the one it describes. Before each patch the
// status, computed from the pod as a sync read it, is laid over the newest
// one the cache holds (Merge, as the kubelet's mergePodStatus): the agent
// sends what it owns (phase, addresses, container statuses, the
// PodReadyToStartContainers, Initialized, ContainersReady and Ready
// conditions) and takes everything else from the newest status, so a
// condition another writer set meanwhile (a readiness gate's,
// DisruptionTarget, PodScheduled, any type it does not own) is never
// reverted; Ready is derived again from the gates the patch carries. A
// failed patch is retried with backoff until it lands or the pod is gone; a
// status equal to the cached one is not sent. A patch the API server
// refuses as invalid is not retried as it is: the refusal is logged and told in one Warning Event
// FailedStatusUpdate on the pod (once per pod for the same refusal), and
// the status is sent once more with the ephemeral container statuses, and
// the container statuses the error names, left as the API holds them, so
// the rest of it lands. If that is refused too, the pending status is
// dropped; the next SetPodStatus starts over.
//
// The cache lags behind the agent's own patches: until it shows a patch,
// the pod the API server answered it with stands for the cached one (as
// the base of the next patch, of NoRegression and of Merge), so a status
// just sent is not sent again by the syncs that follow it, the write's own
// echo among them. Manager.OwnWrite tells the informer's copy of that
// write, so the agent need not sync a pod for its own status write.
//
// It does not decide what runs (package kuberuntime) and does not read the
// runtime itself (podstate.Observer does).
package status
