// Package prober runs the liveness, readiness and startup probes of the
// pods' running containers, as the kubelet does.
//
// A Manager keeps one worker goroutine per (pod, container, probe type) for
// each running regular container and sidecar, keyed by the CRI container
// ID: a restarted container is a new ID, so it gets fresh workers that wait
// out initialDelaySeconds again, and the workers of a container stop when
// it no longer runs or its pod is gone. Each worker probes every
// periodSeconds, bounded by timeoutSeconds, with the container's handler:
// exec (CRI ExecSync), httpGet, tcpSocket or grpc (grpc.health.v1). A run
// of successThreshold successes or failureThreshold failures (a tally, see
// tally.go) sets the container's verdict; a startup probe holds liveness
// and readiness back until it succeeds.
//
// The verdicts are what the sync loop and the status read (UpdatePod
// returns them as podstate.Probed, by container ID): Started, Ready, and a
// liveness or startup failure, which the sync loop's plan turns into a
// kill. Every verdict change calls the Manager's callback, which the agent
// points at its pod workers so that the pod is synced and its status
// recomputed. Failed probes are Unhealthy Warning Events, and every probe
// counts in prober_probe_total, both as the kubelet's.
//
// Ephemeral containers have no probes: the API forbids them.
package prober
