package volume

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// errNoDefaultMode is the kubelet's error for a content volume whose
// defaultMode was not defaulted (API objects always have one).
var errNoDefaultMode = errors.New("no defaultMode used, not even the default value for it")

// configMapPayload returns the files a configMap projects (see keyPayload).
func configMapPayload(items []v1.KeyToPath, cm *v1.ConfigMap, defaultMode *int32, optional bool) (map[string]fileProjection, error) {
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	// The API forbids a key in both; an item looks in data first, as the
	// kubelet's does.
	maps.Copy(data, cm.BinaryData)
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return keyPayload(items, data, defaultMode, optional, "configmap references non-existent config key")
}

// secretPayload returns the files a secret projects (see keyPayload).
func secretPayload(items []v1.KeyToPath, secret *v1.Secret, defaultMode *int32, optional bool) (map[string]fileProjection, error) {
	return keyPayload(items, secret.Data, defaultMode, optional, "references non-existent secret key")
}

// keyPayload returns the files of a configMap or secret whose keys hold
// data: every key when items is empty, else the listed keys at their paths.
// A listed key that is missing is an error, "missingKey: KEY" in the
// kubelet's words, unless the source is optional.
func keyPayload(items []v1.KeyToPath, data map[string][]byte, defaultMode *int32, optional bool, missingKey string) (map[string]fileProjection, error) {
	if defaultMode == nil {
		return nil, errNoDefaultMode
	}
	if len(items) == 0 {
		payload := make(map[string]fileProjection, len(data))
		for k, v := range data {
			payload[k] = fileProjection{Data: v, Mode: *defaultMode}
		}
		return payload, nil
	}
	payload := make(map[string]fileProjection, len(items))
	for _, item := range items {
		v, ok := data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s: %s", missingKey, item.Key)
		}
		payload[item.Path] = fileProjection{Data: v, Mode: itemMode(item.Mode, defaultMode)}
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
