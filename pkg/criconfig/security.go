package criconfig

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The /proc and /sys paths runtimes mask or make read-only in containers
// with the default procMount, as the kubelet sends them (moby's list). The
// kubelet also masks /sys/devices/system/cpu/cpuN/thermal_throttle where
// the host has it; that needs a look at the host and is left out.
var (
	defaultMaskedPaths = []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

func withSandboxSecurityContext(pod *v1.Pod) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		sc, err := sandboxSecurityContext(pod)
		cfg.Linux.SecurityContext = sc
		return err
	}
}

// sandboxSecurityContext returns the security context of pod's sandbox.
// Its seccomp profile is always RuntimeDefault, whatever the pod asks: the
// kubelet forces it so that pod-level profiles only need to allow what the
// containers do, not what the pause process does.
func sandboxSecurityContext(pod *v1.Pod) (*runtimeapi.LinuxSandboxSecurityContext, error) {
	ns, err := podNamespaces(pod)
	if err != nil {
		return nil, err
	}
	// The kubelet sets namespaces only when the pod has a security context,
	// which the API server always defaults; they are always set here so a
	// pod built by hand gets the same sandbox.
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: ns,
		Privileged:       hasPrivilegedContainer(pod),
		Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return sc, nil
	}
	if psc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
	}
	if psc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
	}
	sc.SupplementalGroups = supplementalGroups(psc)
	if sc.SupplementalGroupsPolicy, err = supplementalGroupsPolicy(psc); err != nil {
		return nil, err
	}
	sc.SelinuxOptions = runtimeSELinuxOptions(psc.SELinuxOptions)
	return sc, nil
}

// hasPrivilegedContainer reports whether any container of pod, ephemeral
// ones included, is privileged: the sandbox must be too, or the runtime
// refuses them.
func hasPrivilegedContainer(pod *v1.Pod) bool {
	privileged := func(sc *v1.SecurityContext) bool {
		return sc != nil && sc.Privileged != nil && *sc.Privileged
	}
	for i := range pod.Spec.InitContainers {
		if privileged(pod.Spec.InitContainers[i].SecurityContext) {
			return true
		}
	}
	for i := range pod.Spec.Containers {
		if privileged(pod.Spec.Containers[i].SecurityContext) {
			return true
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if privileged(pod.Spec.EphemeralContainers[i].SecurityContext) {
			return true
		}
	}
	return false
}

// supplementalGroups returns the pod's extra groups: fsGroup first, so
// volume files it owns are accessible, then supplementalGroups. (The
// kubelet also adds groups from PersistentVolume annotations; the agent
// has no such volumes.)
func supplementalGroups(psc *v1.PodSecurityContext) []int64 {
	var g []int64
	if psc.FSGroup != nil {
		g = append(g, *psc.FSGroup)
	}
	return append(g, psc.SupplementalGroups...)
}

func supplementalGroupsPolicy(psc *v1.PodSecurityContext) (runtimeapi.SupplementalGroupsPolicy, error) {
	if psc.SupplementalGroupsPolicy == nil {
		return runtimeapi.SupplementalGroupsPolicy_Merge, nil
	}
	v, ok := runtimeapi.SupplementalGroupsPolicy_value[string(*psc.SupplementalGroupsPolicy)]
	if !ok {
		return 0, fmt.Errorf("unsupported supplementalGroupsPolicy: %s", *psc.SupplementalGroupsPolicy)
	}
	return runtimeapi.SupplementalGroupsPolicy(v), nil
}

func runtimeSELinuxOptions(o *v1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}

// effectiveSecurityContext merges pod and container security contexts, the
// container's fields winning, as the kubelet reads them.
func effectiveSecurityContext(pod *v1.Pod, c *v1.Container) *v1.SecurityContext {
	e := &v1.SecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		e.SELinuxOptions = psc.SELinuxOptions
		e.RunAsUser = psc.RunAsUser
		e.RunAsGroup = psc.RunAsGroup
		e.RunAsNonRoot = psc.RunAsNonRoot
	}
	csc := c.SecurityContext
	if csc == nil {
		return e
	}
	if csc.SELinuxOptions != nil {
		e.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.RunAsUser != nil {
		e.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		e.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		e.RunAsNonRoot = csc.RunAsNonRoot
	}
	e.Capabilities = csc.Capabilities
	e.Privileged = csc.Privileged
	e.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem
	e.AllowPrivilegeEscalation = csc.AllowPrivilegeEscalation
	e.ProcMount = csc.ProcMount
	return e
}

// imageUser returns who the image runs as, as CRI's ImageStatus reports
// it: a UID, else a user name; an image that names neither runs as root.
func imageUser(uid *int64, username string) (*int64, string) {
	if uid != nil {
		return uid, ""
	}
	if username != "" {
		return nil, username
	}
	root := int64(0)
	return &root, ""
}

// verifyRunAsNonRoot enforces runAsNonRoot against the user the container
// will run as. A user name in the image cannot be checked without reading
// the image's /etc/passwd, so it is refused.
func verifyRunAsNonRoot(pod *v1.Pod, c *v1.Container, uid *int64, username string) error {
	sc := effectiveSecurityContext(pod, c)
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podDesc(pod), c.Name)
		}
		return nil
	}
	switch {
	case uid == nil && username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", username, podDesc(pod), c.Name)
	case uid != nil && *uid == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podDesc(pod), c.Name)
	case uid != nil:
		if errs := validation.IsValidUserID(*uid); len(errs) > 0 {
			return fmt.Errorf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)): %s (pod: %q, container: %s)",
				*uid, math.MaxInt32, strings.Join(errs, "; "), podDesc(pod), c.Name)
		}
	}
	return nil
}

// containerSecurityContext returns a container's Linux security context.
// uid and username are the image's user (see imageUser), used when neither
// the pod nor the container sets runAsUser.
func containerSecurityContext(pod *v1.Pod, c *v1.Container, uid *int64, username, targetID string, node NodeConfig) (*runtimeapi.LinuxContainerSecurityContext, error) {
	e := effectiveSecurityContext(pod, c)
	sc := &runtimeapi.LinuxContainerSecurityContext{
		Capabilities:   runtimeCapabilities(e.Capabilities),
		SelinuxOptions: runtimeSELinuxOptions(e.SELinuxOptions),
		Privileged:     e.Privileged != nil && *e.Privileged,
		ReadonlyRootfs: e.ReadOnlyRootFilesystem != nil && *e.ReadOnlyRootFilesystem,
		// no_new_privs only when asked for explicitly: setuid binaries
		// must keep working by default.
		NoNewPrivs:    e.AllowPrivilegeEscalation != nil && !*e.AllowPrivilegeEscalation,
		MaskedPaths:   maskedPaths(e.ProcMount),
		ReadonlyPaths: readonlyPaths(e.ProcMount),
	}
	if e.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *e.RunAsGroup}
	}
	if e.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *e.RunAsUser}
	} else {
		// The image's user is passed explicitly so the runtime does not
		// pick a different one than runAsNonRoot was checked against.
		if uid != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *uid}
		}
		sc.RunAsUsername = username
	}

	psc := pod.Spec.SecurityContext
	var err error
	if sc.Seccomp, err = seccompProfile(psc, c.SecurityContext, node.SeccompProfileRoot); err != nil {
		return nil, err
	}
	// Runtimes before CRI's apparmor field (containerd 1.6) read only the
	// deprecated string, so both are set, as the kubelet does.
	//lint:ignore SA1019 containerd 1.6 reads only ApparmorProfile
	if sc.Apparmor, sc.ApparmorProfile, err = appArmorProfile(pod, c); err != nil {
		return nil, err
	}
	if sc.NamespaceOptions, err = containerNamespaces(pod, targetID); err != nil {
		return nil, err
	}
	if psc != nil {
		sc.SupplementalGroups = supplementalGroups(psc)
		if sc.SupplementalGroupsPolicy, err = supplementalGroupsPolicy(psc); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func runtimeCapabilities(c *v1.Capabilities) *runtimeapi.Capability {
	if c == nil {
		return nil
	}
	out := &runtimeapi.Capability{
		AddCapabilities:  make([]string, 0, len(c.Add)),
		DropCapabilities: make([]string, 0, len(c.Drop)),
	}
	for _, a := range c.Add {
		out.AddCapabilities = append(out.AddCapabilities, string(a))
	}
	for _, d := range c.Drop {
		out.DropCapabilities = append(out.DropCapabilities, string(d))
	}
	return out
}

// maskedPaths and readonlyPaths are sent whether or not the container is
// privileged, as the kubelet does: the runtime drops them for privileged
// containers. An Unmasked procMount sends none.
func maskedPaths(pm *v1.ProcMountType) []string {
	if pm != nil && *pm == v1.UnmaskedProcMount {
		return []string{}
	}
	return append([]string(nil), defaultMaskedPaths...)
}

func readonlyPaths(pm *v1.ProcMountType) []string {
	if pm != nil && *pm == v1.UnmaskedProcMount {
		return []string{}
	}
	return append([]string(nil), defaultReadonlyPaths...)
}

// seccompProfile returns a container's seccomp profile: the container's
// field, else the pod's, else Unconfined (the kubelet's default, without
// --seccomp-default, which this agent does not offer). A Localhost profile
// is a path under root (the kubelet's ROOTDIR/seccomp).
func seccompProfile(psc *v1.PodSecurityContext, csc *v1.SecurityContext, root string) (*runtimeapi.SecurityProfile, error) {
	var p *v1.SeccompProfile
	switch {
	case csc != nil && csc.SeccompProfile != nil:
		p = csc.SeccompProfile
	case psc != nil && psc.SeccompProfile != nil:
		p = psc.SeccompProfile
	}
	if p == nil {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch p.Type {
	case v1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case v1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			//lint:ignore ST1005 the kubelet's message, kept word for word
			return nil, errors.New("localhostProfile must be set if seccompProfile type is Localhost.")
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(root, *p.LocalhostProfile),
		}, nil
	default:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
}

// appArmorProfile returns a container's AppArmor profile, and the same in
// the deprecated string form older runtimes (containerd 1.6) read: the
// container's field, else the deprecated per-container pod annotation
// (static pods may still carry only that), else the pod's field. No
// profile leaves the choice to the runtime.
func appArmorProfile(pod *v1.Pod, c *v1.Container) (*runtimeapi.SecurityProfile, string, error) {
	p := appArmorProfileFor(pod, c)
	if p == nil {
		return nil, "", nil
	}
	switch p.Type {
	case v1.AppArmorProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, v1.DeprecatedAppArmorBetaProfileRuntimeDefault, nil
	case v1.AppArmorProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, v1.DeprecatedAppArmorBetaProfileNameUnconfined, nil
	case v1.AppArmorProfileTypeLocalhost:
		if p.LocalhostProfile == nil {
			return nil, "", errors.New("missing localhost apparmor profile name")
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *p.LocalhostProfile},
			v1.DeprecatedAppArmorBetaProfileNamePrefix + *p.LocalhostProfile, nil
	default:
		return nil, "", fmt.Errorf("unknown apparmor profile type: %q", p.Type)
	}
}

func appArmorProfileFor(pod *v1.Pod, c *v1.Container) *v1.AppArmorProfile {
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		return c.SecurityContext.AppArmorProfile
	}
	if v, ok := pod.Annotations[v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]; ok {
		switch {
		case v == v1.DeprecatedAppArmorBetaProfileRuntimeDefault:
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}
		case v == v1.DeprecatedAppArmorBetaProfileNameUnconfined:
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined}
		case strings.HasPrefix(v, v1.DeprecatedAppArmorBetaProfileNamePrefix):
			name := strings.TrimPrefix(v, v1.DeprecatedAppArmorBetaProfileNamePrefix)
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
		}
	}
	if psc := pod.Spec.SecurityContext; psc != nil && psc.AppArmorProfile != nil {
		return psc.AppArmorProfile
	}
	return nil
}
