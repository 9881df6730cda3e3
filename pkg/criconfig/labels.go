package criconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels the kubelet puts on every sandbox and container; CRI list filters
// select on them, so they are labels rather than annotations.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Annotations the kubelet puts on containers to record, on the CRI object,
// what the spec said when the container was created: the spec hash,
// restart count, termination-message settings, grace periods, the preStop
// hook and the ports. They have the kubelet's names and formats, so tools
// such as crictl show them as they show the kubelet's. ParseContainer reads
// them all back; of those, the agent uses the type, hash and
// termination-message settings.
const (
	AnnotationContainerHash             = "io.kubernetes.container.hash"
	AnnotationRestartCount              = "io.kubernetes.container.restartCount"
	AnnotationTerminationMessagePath    = "io.kubernetes.container.terminationMessagePath"
	AnnotationTerminationMessagePolicy  = "io.kubernetes.container.terminationMessagePolicy"
	AnnotationPodTerminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
	AnnotationPodDeletionGracePeriod    = "io.kubernetes.pod.deletionGracePeriod"
	// AnnotationPreStopHandler holds the JSON of lifecycle.preStop. The
	// kubelet reads it to run the hook of a container whose pod spec is
	// gone; this agent records it for tools and for such later use, but
	// runs preStop hooks only from the current pod spec, so a container
	// stopped without its spec is stopped without its hook.
	AnnotationPreStopHandler = "io.kubernetes.container.preStopHandler"
	// AnnotationContainerPorts holds the JSON of the container's ports.
	AnnotationContainerPorts = "io.kubernetes.container.ports"
	// AnnotationContainerType is the agent's own. The kubelet tells init,
	// regular and ephemeral containers apart by looking their names up in
	// the current spec; recording the type lets the agent classify a
	// container from CRI state alone, before the pod is known again after a
	// restart or once it is deleted.
	AnnotationContainerType = "io.kubernetes.container.type"
)

// ContainerType says which list of the pod spec a container comes from.
type ContainerType string

// The values of AnnotationContainerType.
const (
	ContainerTypeInit      ContainerType = "init"
	ContainerTypeRegular   ContainerType = "regular"
	ContainerTypeEphemeral ContainerType = "ephemeral"
)

// SandboxLabels returns the labels of pod's sandbox: the pod's own labels
// plus the pod's name, namespace and UID, which win over pod labels of the
// same key.
func SandboxLabels(pod *v1.Pod) map[string]string {
	l := make(map[string]string, len(pod.Labels)+3)
	maps.Copy(l, pod.Labels)
	l[LabelPodName] = pod.Name
	l[LabelPodNamespace] = pod.Namespace
	l[LabelPodUID] = string(pod.UID)
	return l
}

// SandboxAnnotations returns the annotations of pod's sandbox: the pod's
// annotations, copied so the config does not alias the pod object.
func SandboxAnnotations(pod *v1.Pod) map[string]string {
	return maps.Clone(pod.Annotations)
}

// ContainerLabels returns the labels of the container named containerName
// of pod. Pod labels are not copied to containers, as with the kubelet.
func ContainerLabels(pod *v1.Pod, containerName string) map[string]string {
	return map[string]string{
		LabelPodName:       pod.Name,
		LabelPodNamespace:  pod.Namespace,
		LabelPodUID:        string(pod.UID),
		LabelContainerName: containerName,
	}
}

// ContainerAnnotations returns the annotations of container c of pod, of
// type typ, started for the restartCount-th time.
func ContainerAnnotations(pod *v1.Pod, c *v1.Container, typ ContainerType, restartCount int) map[string]string {
	a := map[string]string{
		AnnotationContainerHash:            HashContainer(c),
		AnnotationRestartCount:             strconv.Itoa(restartCount),
		AnnotationTerminationMessagePath:   c.TerminationMessagePath,
		AnnotationTerminationMessagePolicy: string(c.TerminationMessagePolicy),
		AnnotationContainerType:            string(typ),
	}
	if pod.DeletionGracePeriodSeconds != nil {
		a[AnnotationPodDeletionGracePeriod] = strconv.FormatInt(*pod.DeletionGracePeriodSeconds, 10)
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		a[AnnotationPodTerminationGracePeriod] = strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10)
	}
	// json.Marshal cannot fail on these API types (no maps with non-string
	// keys, channels or funcs); like the kubelet, a failure would only
	// leave the annotation out.
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if b, err := json.Marshal(c.Lifecycle.PreStop); err == nil {
			a[AnnotationPreStopHandler] = string(b)
		}
	}
	if len(c.Ports) > 0 {
		if b, err := json.Marshal(c.Ports); err == nil {
			a[AnnotationContainerPorts] = string(b)
		}
	}
	return a
}

// ContainerInfo is what a container's labels and annotations say about it.
type ContainerInfo struct {
	PodName       string
	PodNamespace  string
	PodUID        types.UID
	ContainerName string
	// Type is empty for containers created by another kubelet-compatible
	// agent, which does not record it.
	Type                      ContainerType
	Hash                      string
	RestartCount              int
	TerminationMessagePath    string
	TerminationMessagePolicy  v1.TerminationMessagePolicy
	PodTerminationGracePeriod *int64
	PodDeletionGracePeriod    *int64
	PreStop                   *v1.LifecycleHandler
	Ports                     []v1.ContainerPort
}

// ParseContainer reads a container's labels and annotations back. It fails,
// wrapping ErrNotManaged, only when one of the four required labels is
// missing. Like the kubelet, it reads a missing or malformed annotation as
// the field's zero value rather than failing: refusing the container would
// make the caller think it does not exist and start it again.
func ParseContainer(labels, annotations map[string]string) (ContainerInfo, error) {
	var info ContainerInfo
	var err error
	if info.PodName, err = requiredLabel(labels, LabelPodName); err != nil {
		return ContainerInfo{}, err
	}
	if info.PodNamespace, err = requiredLabel(labels, LabelPodNamespace); err != nil {
		return ContainerInfo{}, err
	}
	uid, err := requiredLabel(labels, LabelPodUID)
	if err != nil {
		return ContainerInfo{}, err
	}
	info.PodUID = types.UID(uid)
	if info.ContainerName, err = requiredLabel(labels, LabelContainerName); err != nil {
		return ContainerInfo{}, err
	}

	info.Type = ContainerType(annotations[AnnotationContainerType])
	info.Hash = annotations[AnnotationContainerHash]
	info.RestartCount, _ = strconv.Atoi(annotations[AnnotationRestartCount])
	info.TerminationMessagePath = annotations[AnnotationTerminationMessagePath]
	info.TerminationMessagePolicy = v1.TerminationMessagePolicy(annotations[AnnotationTerminationMessagePolicy])
	info.PodTerminationGracePeriod = int64Annotation(annotations, AnnotationPodTerminationGracePeriod)
	info.PodDeletionGracePeriod = int64Annotation(annotations, AnnotationPodDeletionGracePeriod)
	if s, ok := annotations[AnnotationPreStopHandler]; ok {
		h := &v1.LifecycleHandler{}
		if json.Unmarshal([]byte(s), h) == nil {
			info.PreStop = h
		}
	}
	if s, ok := annotations[AnnotationContainerPorts]; ok {
		var ports []v1.ContainerPort
		if json.Unmarshal([]byte(s), &ports) == nil {
			info.Ports = ports
		}
	}
	return info, nil
}

func requiredLabel(labels map[string]string, key string) (string, error) {
	v, ok := labels[key]
	if !ok {
		return "", fmt.Errorf("missing label %s: %w", key, ErrNotManaged)
	}
	return v, nil
}

func int64Annotation(annotations map[string]string, key string) *int64 {
	s, ok := annotations[key]
	if !ok {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}
