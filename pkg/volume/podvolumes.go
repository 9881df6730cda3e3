package volume

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodVolumes maps a pod's volume names to where the volumes are on the
// host. SetUp returns it; Mounts turns a container's volumeMounts into CRI
// mounts with it.
type PodVolumes map[string]Volume

// Volume is one set-up volume.
type Volume struct {
	// HostPath is the directory (or, for hostPath volumes, whatever the
	// path names) to bind-mount into containers.
	HostPath string
	// ReadOnly is true for volumes that are read-only by nature (configMap,
	// secret, downwardAPI, projected): every mount of them is read-only.
	ReadOnly bool

	// subPaths is where subPath mounts of this volume are prepared; nil for
	// a Volume built by hand, which then cannot be mounted with a subPath.
	subPaths *subPaths
}

// Mounts returns one CRI mount per volumeMount of c, in order. Ephemeral
// containers use it too, converted with v1.Container(ec.EphemeralContainerCommon).
//
// A subPathExpr is expanded with the literal values of c.Env; use
// MountsWithEnv when the container's environment is resolved. A subPath
// must be relative and stay inside the volume (symlinks included); a missing
// one is created as a directory. It is then bind-mounted under the pod's
// volume-subpaths directory, as the kubelet does, so that the container
// cannot swap it for a symlink between the check and its own mount; the
// CRI mount names that bind mount. TearDown removes those mounts.
func (pv PodVolumes) Mounts(c *v1.Container) ([]*runtimeapi.Mount, error) {
	return pv.MountsWithEnv(c, literalEnv(c.Env))
}

// MountsWithEnv is Mounts with the container's resolved environment (the
// values it will run with), used to expand subPathExpr.
func (pv PodVolumes) MountsWithEnv(c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	mounts := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		vol, ok := pv[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		subPath := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if subPath, err = expandSubPathExpr(vm.SubPathExpr, env); err != nil {
				return nil, err
			}
		}
		if err := validateSubPath(subPath); err != nil {
			return nil, err
		}
		hostPath := vol.HostPath
		if subPath != "" {
			if vol.subPaths == nil {
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: volume has no pod directory", vm.Name, c.Name)
			}
			var err error
			hostPath, err = vol.subPaths.prepare(vol.HostPath, subPath, vm.Name, c.Name, i)
			if err != nil {
				return nil, err
			}
		}
		propagation, err := mountPropagation(vm.MountPropagation)
		if err != nil {
			return nil, err
		}
		rro, err := recursiveReadOnly(vm)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve recursive read-only mode: %w", err)
		}
		containerPath := vm.MountPath
		if !filepath.IsAbs(containerPath) {
			containerPath = filepath.Clean("/" + containerPath)
		}
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath:     containerPath,
			HostPath:          hostPath,
			Readonly:          vm.ReadOnly || vol.ReadOnly,
			RecursiveReadOnly: rro,
			SelinuxRelabel:    false,
			Propagation:       propagation,
		})
	}
	return mounts, nil
}

// validateSubPath rejects a subPath that is absolute or steps back with
// "..", with the kubelet's messages.
func validateSubPath(subPath string) error {
	if subPath == "" {
		return nil
	}
	if filepath.IsAbs(subPath) {
		return fmt.Errorf("error SubPath `%s` must not be an absolute path", subPath)
	}
	if slices.Contains(strings.Split(subPath, "/"), "..") {
		return fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", subPath)
	}
	return nil
}

// mountPropagation maps a volumeMount's propagation to the CRI's; none
// means private.
func mountPropagation(mode *v1.MountPropagationMode) (runtimeapi.MountPropagation, error) {
	switch {
	case mode == nil, *mode == v1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case *mode == v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case *mode == v1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("invalid MountPropagation mode: %q", *mode)
}

// recursiveReadOnly resolves a volumeMount's recursiveReadOnly for a
// runtime that does not support recursive read-only mounts (containerd
// 1.6 does not report the feature): IfPossible falls back to a plain
// read-only mount, Enabled is an error, with the kubelet's messages.
func recursiveReadOnly(vm v1.VolumeMount) (bool, error) {
	if vm.RecursiveReadOnly == nil || *vm.RecursiveReadOnly == v1.RecursiveReadOnlyDisabled {
		return false, nil
	}
	if !vm.ReadOnly {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not read-only", vm.Name)
	}
	if vm.MountPropagation != nil && *vm.MountPropagation != v1.MountPropagationNone {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not compatible with propagation %q", vm.Name, *vm.MountPropagation)
	}
	switch *vm.RecursiveReadOnly {
	case v1.RecursiveReadOnlyIfPossible:
		return false, nil
	case v1.RecursiveReadOnlyEnabled:
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not supported by the runtime", vm.Name)
	}
	return false, fmt.Errorf("unknown recursive read-only mode %q", *vm.RecursiveReadOnly)
}
