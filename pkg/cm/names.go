package cm

import (
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/cgroups/systemd"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Driver is how cgroups are named and managed: through the cgroup file
// system directly, or as systemd slices.
type Driver string

// The kubelet's --cgroup-driver values.
const (
	DriverCgroupfs Driver = "cgroupfs"
	DriverSystemd  Driver = "systemd"
)

// ParseDriver checks a --cgroup-driver value.
func ParseDriver(s string) (Driver, error) {
	switch d := Driver(s); d {
	case DriverCgroupfs, DriverSystemd:
		return d, nil
	}
	return "", fmt.Errorf("cgroup driver %q is not one of %s, %s", s, DriverCgroupfs, DriverSystemd)
}

// Names of the hierarchy's levels, the kubelet's.
const (
	kubepodsName   = "kubepods"
	burstableName  = "burstable"
	besteffortName = "besteffort"
	podPrefix      = "pod"
	systemdSuffix  = ".slice"
)

// CgroupName is a cgroup as the list of its path components below the
// root of the hierarchy, independent of the driver's syntax.
type CgroupName []string

// ParseCgroupfs turns a cgroupfs path ("/a/b") into a CgroupName.
func ParseCgroupfs(p string) CgroupName {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return CgroupName{}
	}
	return strings.Split(p, "/")
}

// Child returns the name of the cgroup component below n.
func (n CgroupName) Child(component string) CgroupName {
	return append(append(CgroupName{}, n...), component)
}

// ToCgroupfs is the cgroupfs path: "/a/b/c".
func (n CgroupName) ToCgroupfs() string {
	return "/" + path.Join(n...)
}

// ToSystemd is the path of nested slices systemd gives the cgroup:
// "/a.slice/a-b.slice/a-b-c.slice", with each component's "-" escaped as
// "_", as the kubelet does.
func (n CgroupName) ToSystemd() string {
	if len(n) == 0 {
		return "/"
	}
	parts := make([]string, len(n))
	for i, c := range n {
		parts[i] = strings.ReplaceAll(c, "-", "_")
	}
	expanded, err := systemd.ExpandSlice(strings.Join(parts, "-") + systemdSuffix)
	if err != nil {
		// Components never hold "/" nor are empty (ParseCgroupfs and the
		// fixed names), which is all ExpandSlice refuses.
		return "/" + strings.Join(parts, "-") + systemdSuffix
	}
	return expanded
}

// Hierarchy names the node's pod cgroups below a root, in a driver's
// syntax.
type Hierarchy struct {
	// Root is --cgroup-root.
	Root CgroupName
	// Driver gives the syntax of Literal.
	Driver Driver
}

// Kubepods is the cgroup of all pods, and of the Guaranteed ones directly.
func (h Hierarchy) Kubepods() CgroupName { return h.Root.Child(kubepodsName) }

// Tier is the cgroup of the pods of a QoS class.
func (h Hierarchy) Tier(qos v1.PodQOSClass) CgroupName {
	switch qos {
	case v1.PodQOSBurstable:
		return h.Kubepods().Child(burstableName)
	case v1.PodQOSBestEffort:
		return h.Kubepods().Child(besteffortName)
	}
	return h.Kubepods()
}

// Tiers are the three QoS tiers, Guaranteed (kubepods) first.
func (h Hierarchy) Tiers() []CgroupName {
	return []CgroupName{h.Tier(v1.PodQOSGuaranteed), h.Tier(v1.PodQOSBurstable), h.Tier(v1.PodQOSBestEffort)}
}

// Pod is the cgroup of the pod with that UID and QoS class.
func (h Hierarchy) Pod(qos v1.PodQOSClass, uid types.UID) CgroupName {
	return h.Tier(qos).Child(podPrefix + string(uid))
}

// Literal is name in the driver's syntax: what the CRI runtime is given
// as cgroup_parent (the kubelet's cgroupManager.Name).
func (h Hierarchy) Literal(name CgroupName) string {
	if h.Driver == DriverSystemd {
		return name.ToSystemd()
	}
	return name.ToCgroupfs()
}

// PodUIDFromDir tells whether a directory of a tier is a pod's cgroup, in
// either driver's syntax ("pod<UID>" or "kubepods-burstable-pod<UID with
// _>.slice"), and whose.
func PodUIDFromDir(dir string) (types.UID, bool) {
	if s, ok := strings.CutSuffix(dir, systemdSuffix); ok {
		dir = strings.ReplaceAll(s[strings.LastIndex(s, "-")+1:], "_", "-")
	}
	uid, ok := strings.CutPrefix(dir, podPrefix)
	if !ok || uid == "" {
		return "", false
	}
	return types.UID(uid), true
}
