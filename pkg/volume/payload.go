package volume

import (
	"errors"
	"fmt"
	"path/filepath"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// errNoDefaultMode is the kubelet's error for a content volume whose
// defaultMode was not defaulted (API objects always have one).
var errNoDefaultMode = errors.New("no defaultMode used, not even the default value for it")

// configMapPayload returns the files a configMap projects: every key when
// items is empty, else the listed keys at their paths. A listed key that is
// missing is an error unless the source is optional.
func configMapPayload(items []v1.KeyToPath, cm *v1.ConfigMap, defaultMode *int32, optional bool) (map[string]fileProjection, error) {
	if defaultMode == nil {
		return nil, errNoDefaultMode
	}
	payload := make(map[string]fileProjection, len(cm.Data)+len(cm.BinaryData))
	if len(items) == 0 {
		for k, v := range cm.Data {
			payload[k] = fileProjection{Data: []byte(v), Mode: *defaultMode}
		}
		for k, v := range cm.BinaryData {
			payload[k] = fileProjection{Data: v, Mode: *defaultMode}
		}
		return payload, nil
	}
	for _, item := range items {
		var data []byte
		if s, ok := cm.Data[item.Key]; ok {
			data = []byte(s)
		} else if b, ok := cm.BinaryData[item.Key]; ok {
			data = b
		} else {
			if optional {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", item.Key)
		}
		payload[item.Path] = fileProjection{Data: data, Mode: itemMode(item.Mode, defaultMode)}
	}
	return payload, nil
}

// secretPayload is configMapPayload for a secret.
func secretPayload(items []v1.KeyToPath, secret *v1.Secret, defaultMode *int32, optional bool) (map[string]fileProjection, error) {
	if defaultMode == nil {
		return nil, errNoDefaultMode
	}
	payload := make(map[string]fileProjection, len(secret.Data))
	if len(items) == 0 {
		for k, v := range secret.Data {
			payload[k] = fileProjection{Data: v, Mode: *defaultMode}
		}
		return payload, nil
	}
	for _, item := range items {
		data, ok := secret.Data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", item.Key)
		}
		payload[item.Path] = fileProjection{Data: data, Mode: itemMode(item.Mode, defaultMode)}
	}
	return payload, nil
}

// downwardAPIPayload returns the files of a downwardAPI volume or projection.
// Every item that cannot be read is reported; the others are still
// returned, as the kubelet does.
func downwardAPIPayload(items []v1.DownwardAPIVolumeFile, pod *v1.Pod, nodeAllocatable v1.ResourceList, defaultMode *int32) (map[string]fileProjection, error) {
	if defaultMode == nil {
		return nil, errNoDefaultMode
	}
	var errs []error
	payload := make(map[string]fileProjection, len(items))
	for _, item := range items {
		f := fileProjection{Mode: itemMode(item.Mode, defaultMode)}
		switch {
		case item.FieldRef != nil:
			s, err := criconfig.PodFieldValue(pod, item.FieldRef.FieldPath)
			if err != nil {
				errs = append(errs, err)
			}
			f.Data = []byte(s)
		case item.ResourceFieldRef != nil:
			s, err := containerResourceValue(item.ResourceFieldRef, pod, nodeAllocatable)
			if err != nil {
				errs = append(errs, err)
			}
			f.Data = []byte(s)
		}
		payload[filepath.Clean(item.Path)] = f
	}
	return payload, aggregate(errs)
}

func itemMode(mode, defaultMode *int32) int32 {
	if mode != nil {
		return *mode
	}
	return *defaultMode
}
