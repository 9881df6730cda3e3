// Package cm is the node's pod cgroup manager, the part of the kubelet's
// container manager that owns the pod cgroup hierarchy:
//
//	<cgroup-root>/kubepods                  Guaranteed pods, one pod<UID> each
//	<cgroup-root>/kubepods/burstable        Burstable pods
//	<cgroup-root>/kubepods/besteffort       BestEffort pods
//
// A pod's cgroup is created (or updated) before its sandbox, whose CRI
// cgroup_parent it becomes, so every container of the pod, ephemeral ones
// included, runs below it. It is removed with the pod, and a periodic
// sweep removes those of pods gone for good.
//
// Names and resource settings are pure functions (names.go,
// resources.go), as the kubelet computes them; the cgroups themselves are
// written with github.com/opencontainers/cgroups, the library the kubelet
// uses, through the cgroupfs or the systemd driver, on cgroup v1 and v2.
//
// Not done (the kubelet does these): node allocatable enforcement on
// kubepods (it gets the node's capacity), hugepage limits, the alpha
// MemoryQoS and QOSReserved settings, and killing processes left in a
// cgroup before its removal (the sweep retries instead).
package cm
