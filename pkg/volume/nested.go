package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// makeNestedMountPoints creates, in a read-only volume's directory, the
// directories where other volumes are mounted beneath it in some
// container: the runtime cannot create them in a read-only bind mount.
func makeNestedMountPoints(volName, dir string, pod *v1.Pod) error {
	dirs, err := nestedMountPoints(volName, pod)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), nestedMountPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("unable to create nested volume mountpoints: %w", err)
		}
	}
	return nil
}

// nestedMountPoints returns, relative to volume volName, the directories
// where other volumes are mounted directly beneath it in any container of
// the pod (init, regular and ephemeral). A volume mounted at /a/b beneath
// one at /a yields "b"; one at /a/b/c beneath it as well is left to /a/b.
func nestedMountPoints(volName string, pod *v1.Pod) ([]string, error) {
	var out []string
	for _, c := range podContainers(pod) {
		var all, mine []string
		for _, vm := range c.VolumeMounts {
			p := filepath.Clean(vm.MountPath)
			all = append(all, p)
			if vm.Name == volName {
				mine = append(mine, p)
			}
		}
		sort.Strings(all)
		for _, base := range mine {
			if strings.HasPrefix(base, "../") {
				// Don't let a container make us create directories
				// outside its root.
				return nil, fmt.Errorf("invalid container mount point %v", base)
			}
			prefix := base + "/"
			var found []string
			for _, mp := range all {
				rel, ok := strings.CutPrefix(mp, prefix)
				if !ok {
					continue
				}
				nested := false
				for _, f := range found {
					if strings.HasPrefix(mp, f) {
						nested = true
						break
					}
				}
				if nested {
					continue
				}
				found = append(found, mp+"/")
				out = append(out, rel)
			}
		}
	}
	return out, nil
}

// podContainers returns the pod's init, regular and ephemeral containers,
// the ephemeral ones converted as the runtime sees them.
func podContainers(pod *v1.Pod) []*v1.Container {
	out := make([]*v1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers)+len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	for i := range pod.Spec.EphemeralContainers {
		c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, &c)
	}
	return out
}

// podFSUser returns the user every container of the pod runs as, when they
// all declare the same one (in their own or the pod's security context);
// service account tokens are then owned by it, as the kubelet does.
func podFSUser(pod *v1.Pod) *int64 {
	var user *int64
	for _, c := range podContainers(pod) {
		u := effectiveRunAsUser(pod, c)
		if u == nil || (user != nil && *user != *u) {
			return nil
		}
		user = u
	}
	return user
}

func effectiveRunAsUser(pod *v1.Pod, c *v1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		u := *c.SecurityContext.RunAsUser
		return &u
	}
	if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsUser != nil {
		u := *pod.Spec.SecurityContext.RunAsUser
		return &u
	}
	return nil
}
