package volume

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// podFieldValue returns the value of a downward API fieldRef a volume may
// project: metadata.name, namespace, uid, labels and annotations, whole or
// one key ("metadata.labels['app']"). Messages are the kubelet's.
func podFieldValue(pod *v1.Pod, fieldPath string) (string, error) {
	if p, key, ok := splitSubscript(fieldPath); ok {
		switch p {
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
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
		}
	}
	switch fieldPath {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

// splitSubscript splits "metadata.labels['k']" into "metadata.labels" and
// "k".
func splitSubscript(fieldPath string) (string, string, bool) {
	s, ok := strings.CutSuffix(fieldPath, "']")
	if !ok {
		return fieldPath, "", false
	}
	p, key, ok := strings.Cut(s, "['")
	if !ok || p == "" {
		return fieldPath, "", false
	}
	return p, key, true
}

// formatMap renders labels or annotations as the kubelet does: one
// key="quoted value" per line, sorted by key, no final newline.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for i, k := range keys {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
}

// containerResourceValue returns a container's request or limit in units
// of the selector's divisor, rounded up. A missing cpu, memory or
// ephemeral-storage limit reads as the node's allocatable amount, as the
// kubelet does.
func containerResourceValue(sel *v1.ResourceFieldSelector, pod *v1.Pod, nodeAllocatable v1.ResourceList) (string, error) {
	c := findContainer(pod, sel.ContainerName)
	if c == nil {
		return "", fmt.Errorf("container %s not found", sel.ContainerName)
	}
	limits := c.Resources.Limits.DeepCopy()
	if limits == nil {
		limits = v1.ResourceList{}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := limits[name]; !ok || q.IsZero() {
			if a, ok := nodeAllocatable[name]; ok {
				limits[name] = a.DeepCopy()
			}
		}
	}
	divisor := sel.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	requests := c.Resources.Requests
	switch sel.Resource {
	case "limits.cpu":
		return ceilDiv(float64(limits.Cpu().MilliValue()), float64(divisor.MilliValue())), nil
	case "requests.cpu":
		return ceilDiv(float64(requests.Cpu().MilliValue()), float64(divisor.MilliValue())), nil
	case "limits.memory":
		return ceilDiv(float64(limits.Memory().Value()), float64(divisor.Value())), nil
	case "requests.memory":
		return ceilDiv(float64(requests.Memory().Value()), float64(divisor.Value())), nil
	case "limits.ephemeral-storage":
		return ceilDiv(float64(limits.StorageEphemeral().Value()), float64(divisor.Value())), nil
	case "requests.ephemeral-storage":
		return ceilDiv(float64(requests.StorageEphemeral().Value()), float64(divisor.Value())), nil
	}
	if name, ok := strings.CutPrefix(sel.Resource, "requests."); ok && strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
		return ceilDiv(float64(requests.Name(v1.ResourceName(name), resource.BinarySI).Value()), float64(divisor.Value())), nil
	}
	if name, ok := strings.CutPrefix(sel.Resource, "limits."); ok && strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
		return ceilDiv(float64(limits.Name(v1.ResourceName(name), resource.BinarySI).Value()), float64(divisor.Value())), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", sel.Resource)
}

func ceilDiv(a, b float64) string {
	return strconv.FormatInt(int64(math.Ceil(a/b)), 10)
}

// findContainer finds a regular or init container by name; ephemeral
// containers have no resources to report.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// aggregate joins errors the way the kubelet reports several at once
// ("[a, b]"), and returns a single error unchanged.
func aggregate(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return utilerrors.NewAggregate(errs)
}
