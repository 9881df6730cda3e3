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

// fieldRefValue returns the value of an env var's downward-API fieldRef,
// as the kubelet's env path computes it: the field path is checked first
// (with the kubelet's field-label messages), then the fields only the node
// knows are answered, and the rest is PodFieldValue. IPs come from opts:
// PodIPs (primary family first, as the kubelet sorts them) or PodIP, and
// HostIPs or HostIP.
func fieldRefValue(fs *v1.ObjectFieldSelector, pod *v1.Pod, opts *ContainerOptions) (string, error) {
	path, err := checkFieldLabel(fs.APIVersion, fs.FieldPath)
	if err != nil {
		return "", err
	}
	switch path {
	case "spec.nodeName":
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
	}
	// spec.restartPolicy, spec.schedulerName and status.phase pass the
	// check but are not metadata: PodFieldValue reports them unsupported,
	// as the kubelet does.
	return PodFieldValue(pod, path)
}

// checkFieldLabel checks an env fieldRef's apiVersion and fieldPath the way
// the API's field-label conversion does, and returns the path to read
// ("spec.host" reads as "spec.nodeName").
func checkFieldLabel(apiVersion, fieldPath string) (string, error) {
	// The API server defaults apiVersion; a hand-built pod may omit it.
	if apiVersion != "" && apiVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", apiVersion)
	}
	if path, _, ok := splitSubscript(fieldPath); ok {
		if path != "metadata.annotations" && path != "metadata.labels" {
			return "", fmt.Errorf("field label does not support subscript: %s", fieldPath)
		}
		return fieldPath, nil
	}
	switch fieldPath {
	case "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
		"spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
		"status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs":
		return fieldPath, nil
	case "spec.host":
		return "spec.nodeName", nil
	}
	return "", fmt.Errorf("field label not supported: %s", fieldPath)
}

// PodFieldValue returns the value of a downward-API field path that the pod
// object alone answers: metadata.name, metadata.namespace, metadata.uid, and
// metadata.labels or metadata.annotations, whole (key="value" lines) or
// one key ("metadata.labels['app']", empty when the key is absent). Any other
// path fails with "unsupported fieldPath: PATH", a subscript on another path
// with `fieldPath "PATH" does not support subscript`, and an invalid key with
// "invalid key subscript in PATH: ...": the kubelet's messages, which its
// downwardAPI volumes report as they are. It needs no container or node
// facts, so a volume can use it.
func PodFieldValue(pod *v1.Pod, fieldPath string) (string, error) {
	if path, key, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
	}
	switch fieldPath {
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
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
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
// key="quoted value" lines in key order, with no final newline.
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

// resourceFieldRefValue returns the value of an env var's resourceFieldRef,
// as the kubelet's env path computes it. An unset limit of CPU, memory or
// ephemeral storage is the pod-level limit if any, else the node's
// allocatable amount when known, else 0.
func resourceFieldRefValue(fs *v1.ResourceFieldSelector, pod *v1.Pod, c *v1.Container, allocatable v1.ResourceList) (string, error) {
	target, defaulted := c, true
	if fs.ContainerName != "" {
		// The kubelet defaults the limits of the pod's regular containers
		// only, so a named init container keeps its own.
		var init bool
		var err error
		if target, init, err = FindContainer(pod, fs.ContainerName); err != nil {
			return "", err
		}
		defaulted = !init
	}
	res := target.Resources
	if defaulted {
		res.Limits = DefaultLimits(res.Limits, podLimitDefaults(pod, allocatable))
	}
	return ResourceFieldValue(fs, res)
}

// FindContainer returns the regular or init container of pod named name,
// and whether it is an init container. Ephemeral containers are not
// searched: they have no resources. The error is the kubelet's
// "container NAME not found".
func FindContainer(pod *v1.Pod, name string) (c *v1.Container, init bool, err error) {
	named := func(x v1.Container) bool { return x.Name == name }
	if i := slices.IndexFunc(pod.Spec.Containers, named); i >= 0 {
		return &pod.Spec.Containers[i], false, nil
	}
	if i := slices.IndexFunc(pod.Spec.InitContainers, named); i >= 0 {
		return &pod.Spec.InitContainers[i], true, nil
	}
	return nil, false, fmt.Errorf("container %s not found", name)
}

// ResourceFieldValue returns the request or limit in res that a
// downward-API resourceFieldRef selects ("limits.cpu", "requests.memory",
// "limits.hugepages-2Mi"...), in units of its divisor (1 when unset),
// rounded up; an absent resource reads 0. Limits are read as they are:
// callers that default unset limits do so first (DefaultLimits). Any other
// resource fails with the kubelet's "unsupported container resource : R".
func ResourceFieldValue(fs *v1.ResourceFieldSelector, res v1.ResourceRequirements) (string, error) {
	kind, name, _ := strings.Cut(fs.Resource, ".")
	var list v1.ResourceList
	switch kind {
	case "limits":
		list = res.Limits
	case "requests":
		list = res.Requests
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

// DefaultLimits returns a copy of limits whose CPU, memory and
// ephemeral-storage limits, when unset or zero, are taken from defaults
// (the node's allocatable, for the downward API). Hugepages are never
// overcommitted, so they always have a limit and are not defaulted. The
// arguments are not modified.
func DefaultLimits(limits, defaults v1.ResourceList) v1.ResourceList {
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
