// Package criconfig turns a pod spec into the CRI PodSandboxConfig and
// ContainerConfig the kubelet would send for it, and owns the labels and
// annotations that record a pod's state on CRI objects; ParseContainer reads
// a container's back.
//
// Everything here is a pure function of its inputs. The few things the
// kubelet looks up while it builds a config come in through small interfaces
// and fields the caller fills: ConfigMaps and Secrets (EnvSources), the host's
// resolv.conf (DNSOptions.ReadFile), the image's user, the pod's IPs, and the
// node's facts (NodeConfig). The package makes no CRI or API call itself and
// keeps no state, so the same inputs always give the same config.
//
// Each concern (namespaces, security context, DNS, env, resources...) is one
// small step, tested on its own, in the manner of containerd's oci.SpecOpts.
//
// The downward-API and $(VAR) rules are kept here once and exported
// (PodFieldValue, ResourceFieldValue, DefaultLimits, FindContainer and
// ExpandVars) for the volume package, which must compute the same values for
// downwardAPI volumes and subPathExpr.
//
// Errors. Every error BuildContainerConfig returns matches
// ErrCreateContainerConfig and carries the kubelet's own message (for example
// `configmap "x" not found`, as long as EnvSources words a missing object as
// the kubelet does), because the caller reports it verbatim as the
// container's Waiting message with reason CreateContainerConfigError. Errors
// from BuildSandboxConfig are the kubelet's sandbox config errors.
// ParseContainer fails, wrapping ErrNotManaged, only for a container that
// lacks a pod's labels; callers skip those.
//
// It does not create log directories or termination-message files, pull
// images, resolve volumes or run anything: the caller does that and passes
// the results in. An env var from a fileKeyRef, which needs a volume's
// files, fails as unsupported; the preStop hook is recorded on the
// container but never run from there (see AnnotationPreStopHandler).
package criconfig
