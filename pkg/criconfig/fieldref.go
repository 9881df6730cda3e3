package criconfig

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// fieldRefValue returns the value of a downward-API field of pod, with the
// kubelet's error messages. IPs come from opts: PodIPs (primary family
// first, as the kubelet sorts them) or PodIP, and HostIPs or HostIP.
func fieldRefValue(fs *v1.ObjectFieldSelector, pod *v1.Pod, opts *ContainerOptions) (string, error) {
	// The API server defaults apiVersion; a hand-built pod may omit it.
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	if path, key, ok := splitSubscript(fs.FieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fs.FieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fs.FieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		default:
			return "", fmt.Errorf("field label does not support subscript: %s", fs.FieldPath)
		}
	}
	switch fs.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName", "spec.host":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return opts.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		if len(opts.PodIPs) > 0 {
			return opts.PodIPs[0], nil
		}
		return opts.PodIP, nil
	case "status.podIPs":
		if len(opts.PodIPs) > 0 {
			return strings.Join(opts.PodIPs, ","), nil
		}
		return opts.PodIP, nil
	case "status.hostIP":
		if opts.HostIP != "" {
			return opts.HostIP, nil
		}
		if len(opts.HostIPs) > 0 {
			return opts.HostIPs[0], nil
		}
		return "", nil
	case "status.hostIPs":
		if len(opts.HostIPs) > 0 {
			return strings.Join(opts.HostIPs, ","), nil
		}
		return opts.HostIP, nil
	case "spec.restartPolicy", "spec.schedulerName", "status.phase":
		// Valid for the API's field selectors but not for env; the
		// kubelet says so in these words.
		return "", fmt.Errorf("unsupported fieldPath: %v", fs.FieldPath)
	}
	return "", fmt.Errorf("field label not supported: %s", fs.FieldPath)
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	s, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return fieldPath, "", false
	}
	path, key, found = strings.Cut(s, "['")
	if !found || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// formatMap renders labels or annotations as the downward API does:
// key="quoted value" lines in key order.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceFieldRefValue returns a container's request or limit in units of
// the selector's divisor, rounded up. An unset limit of CPU, memory or
// ephemeral storage is the pod-level limit if any, else the node's
// allocatable amount when known, else 0.
func resourceFieldRefValue(fs *v1.ResourceFieldSelector, pod *v1.Pod, c *v1.Container, allocatable v1.ResourceList) (string, error) {
	target, defaulted := c, true
	if fs.ContainerName != "" {
		// Ephemeral containers cannot be named: they have no resources.
		// The kubelet defaults the limits of the pod's regular containers
		// only, so a named init container keeps its own.
		if i := slices.IndexFunc(pod.Spec.Containers, func(x v1.Container) bool { return x.Name == fs.ContainerName }); i >= 0 {
			target = &pod.Spec.Containers[i]
		} else if i = slices.IndexFunc(pod.Spec.InitContainers, func(x v1.Container) bool { return x.Name == fs.ContainerName }); i >= 0 {
			target, defaulted = &pod.Spec.InitContainers[i], false
		} else {
			return "", fmt.Errorf("container %s not found", fs.ContainerName)
		}
	}

	kind, name, _ := strings.Cut(fs.Resource, ".")
	var list v1.ResourceList
	switch kind {
	case "limits":
		list = target.Resources.Limits
		if defaulted {
			list = defaultedLimits(list, podLimitDefaults(pod, allocatable))
		}
	case "requests":
		list = target.Resources.Requests
	default:
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	divisor := resource.MustParse("1")
	if !fs.Divisor.IsZero() {
		divisor = fs.Divisor
	}
	q := list[v1.ResourceName(name)]
	switch rn := v1.ResourceName(name); {
	case rn == v1.ResourceCPU:
		return ceilDiv(q.MilliValue(), divisor.MilliValue()), nil
	case rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage, strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
		return ceilDiv(q.Value(), divisor.Value()), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

func ceilDiv(a, b int64) string {
	return strconv.FormatInt(int64(math.Ceil(float64(a)/float64(b))), 10)
}

// podLimitDefaults returns what an unset container limit defaults to for
// the downward API: the node's allocatable, overridden by pod-level limits.
// (The kubelet always knows allocatable; with it unknown, pod-level limits
// still apply.)
func podLimitDefaults(pod *v1.Pod, allocatable v1.ResourceList) v1.ResourceList {
	d := allocatable.DeepCopy()
	if d == nil {
		d = v1.ResourceList{}
	}
	if pod.Spec.Resources == nil {
		return d
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		if q, ok := pod.Spec.Resources.Limits[name]; ok && !q.IsZero() {
			d[name] = q.DeepCopy()
		}
	}
	return d
}

// defaultedLimits fills the CPU, memory and ephemeral-storage limits that
// are unset or zero from defaults. Hugepages are never overcommitted, so
// they always have a limit and are not defaulted.
func defaultedLimits(limits, defaults v1.ResourceList) v1.ResourceList {
	out := limits.DeepCopy()
	if out == nil {
		out = v1.ResourceList{}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := out[name]; ok && !q.IsZero() {
			continue
		}
		if d, ok := defaults[name]; ok {
			out[name] = d.DeepCopy()
		}
	}
	return out
}
