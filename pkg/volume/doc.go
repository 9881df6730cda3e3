// Package volume prepares a pod's volumes on the node's disk and turns a
// container's volumeMounts into CRI mounts.
//
// It keeps the kubelet's layout under the agent's root directory, so that
// tools and operators find things where they expect them:
//
//	<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>
//	<root>/pods/<uid>/volumes/kubernetes.io~configmap/<name>
//	<root>/pods/<uid>/volumes/kubernetes.io~secret/<name>          (tmpfs)
//	<root>/pods/<uid>/volumes/kubernetes.io~downward-api/<name>    (tmpfs)
//	<root>/pods/<uid>/volumes/kubernetes.io~projected/<name>       (tmpfs)
//	<root>/pods/<uid>/plugins/kubernetes.io~empty-dir/<name>/ready
//	<root>/pods/<uid>/volume-subpaths/<name>/<container>/<index>
//
// Supported kinds are emptyDir, hostPath, configMap, secret, downwardAPI and
// projected (configMap, secret, downwardAPI and serviceAccountToken sources;
// clusterTrustBundle and podCertificate sources fail the volume). Any other
// kind fails with a *SetUpError naming the volume and its kind. A missing
// optional configMap or secret gives a volume without its files.
//
// Content volumes are written the way the kubelet's AtomicWriter does: files
// live in a timestamped directory, a "..data" symlink points at it, and the
// user-visible names are symlinks through "..data". An update writes a new
// timestamped directory and renames a new symlink over "..data", so a running
// container sees either the old or the new set of files through its bind
// mount, never a mix.
//
// # Retry semantics
//
// Manager.SetUp is level-triggered and idempotent: call it on every pod sync.
// It creates what is missing, refreshes content that changed (configMaps,
// secrets, downward API fields, service account tokens due for renewal) and
// leaves the rest alone. An error means "try again on the next sync"; none is
// terminal. Each failing volume is reported as a *SetUpError whose message is
// the kubelet's FailedMount event message; a volume that was set up earlier
// and only failed to refresh is marked Stale and stays usable.
//
// Calls for one pod must not overlap (the per-pod worker serializes them);
// calls for different pods may run concurrently. TearDown runs once the
// pod's containers are gone; CleanupOrphans at start, for pods deleted
// while the agent was down.
//
// PodVolumes.MountsWithEnv gives each container its CRI mounts, expanding a
// subPathExpr with the container's resolved environment (downward API and
// other valueFrom variables included), as the kubelet does. A subPath is
// checked against the volume (no absolute path, no "..", no symlink
// leading out) and bind-mounted under volume-subpaths before the runtime
// sees it, as the kubelet does, so a container cannot redirect it.
// Manager.PrepareRootDir makes the root directory a shared mount, which
// HostToContainer and Bidirectional propagation need.
//
// The package does not attach or mount network or CSI storage, does not
// enforce emptyDir size limits on disk (the kubelet does that by eviction),
// and does not relabel for SELinux.
package volume
