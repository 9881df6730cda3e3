package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
)

// contentVolume is a volume whose files come from the API (configMap,
// secret, projected) or from the pod itself (downwardAPI).
type contentVolume struct {
	plugin string
	medium v1.StorageMedium
	// payload computes the files; it is called on every SetUp.
	payload func(ctx context.Context) (map[string]fileProjection, error)
}

// contentVolumeFor returns how to build vol's files, or false when vol is
// not a content volume.
func (m *Manager) contentVolumeFor(pod *v1.Pod, vol *v1.Volume, fsGroup, fsUser *int64) (contentVolume, bool) {
	switch src := vol.VolumeSource; {
	case src.ConfigMap != nil:
		s := src.ConfigMap
		return contentVolume{plugin: pluginConfigMap, medium: v1.StorageMediumDefault, payload: func(ctx context.Context) (map[string]fileProjection, error) {
			return m.configMaps().files(ctx, pod.Namespace, s.Name, s.Items, s.Optional, s.DefaultMode)
		}}, true
	case src.Secret != nil:
		s := src.Secret
		return contentVolume{plugin: pluginSecret, medium: v1.StorageMediumMemory, payload: func(ctx context.Context) (map[string]fileProjection, error) {
			return m.secrets().files(ctx, pod.Namespace, s.SecretName, s.Items, s.Optional, s.DefaultMode)
		}}, true
	case src.DownwardAPI != nil:
		return contentVolume{plugin: pluginDownwardAPI, medium: v1.StorageMediumMemory, payload: func(context.Context) (map[string]fileProjection, error) {
			return m.downwardAPIFiles(pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode)
		}}, true
	case src.Projected != nil:
		return contentVolume{plugin: pluginProjected, medium: v1.StorageMediumMemory, payload: func(ctx context.Context) (map[string]fileProjection, error) {
			return m.projectedPayload(ctx, pod, src.Projected, fsGroup, fsUser)
		}}, true
	}
	return contentVolume{}, false
}

// setUpContent builds a content volume's files and writes them atomically
// into its directory, which it prepares first. It returns the directory and
// whether the volume had been published before (so a failure leaves it
// usable with its previous content).
func (m *Manager) setUpContent(ctx context.Context, pod *v1.Pod, vol *v1.Volume, cv contentVolume, fsGroup *int64) (string, bool, error) {
	dir := m.layout.volumeDir(pod.UID, cv.plugin, vol.Name)
	_, err := os.Lstat(filepath.Join(dir, dataDirName))
	published := err == nil

	// The files are computed before anything is created, so that a
	// missing configMap leaves no empty volume behind.
	payload, err := cv.payload(ctx)
	if err != nil {
		return dir, published, err
	}
	if err := m.setUpEmptyDir(ctx, emptyDirSpec{pod: pod, volName: vol.Name, dir: dir, medium: cv.medium, fsGroup: fsGroup}); err != nil {
		return dir, published, err
	}
	if err := makeNestedMountPoints(vol.Name, dir, pod); err != nil {
		return dir, published, err
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "volume", vol.Name)
	w := &atomicWriter{dir: dir, logger: logger, now: m.clock.Now}
	written, err := w.write(payload, func() error {
		// New files may sit outside the timestamped directory too (the
		// visible links): change the whole volume.
		return applyFSGroup(logger, dir, fsGroup, true)
	})
	if err != nil {
		return dir, published, err
	}
	if written {
		logger.V(2).Info("Updated volume content", "plugin", cv.plugin, "files", len(payload))
	}
	return dir, true, nil
}

// keySource is a kind of API object whose keys become files: configMaps
// and secrets.
type keySource[T any] struct {
	// resource names the kind in the kubelet's FailedMount message for a
	// missing object (`configmap "x" not found`).
	resource string
	get      func(ctx context.Context, namespace, name string) (*T, error)
	payload  func(items []v1.KeyToPath, obj *T, defaultMode *int32, optional bool) (map[string]fileProjection, error)
}

// configMaps is the keySource of configMap volumes and projections.
func (m *Manager) configMaps() keySource[v1.ConfigMap] {
	return keySource[v1.ConfigMap]{resource: "configmap", get: m.api.ConfigMap, payload: configMapPayload}
}

// secrets is the keySource of secret volumes and projections.
func (m *Manager) secrets() keySource[v1.Secret] {
	return keySource[v1.Secret]{resource: "secret", get: m.api.Secret, payload: secretPayload}
}

// files gets the named object and returns the files it projects. A missing
// object is an error worded as the kubelet's FailedMount message, whatever
// the wording of the APISource's error, unless optional is set: it then
// reads as empty.
func (k keySource[T]) files(ctx context.Context, namespace, name string, items []v1.KeyToPath, optional *bool, defaultMode *int32) (map[string]fileProjection, error) {
	isOptional := optional != nil && *optional
	obj, err := k.get(ctx, namespace, name)
	switch {
	case err == nil:
	case apierrors.IsNotFound(err) && isOptional:
		obj = new(T)
	case apierrors.IsNotFound(err):
		return nil, apierrors.NewNotFound(v1.Resource(k.resource), name)
	default:
		return nil, err
	}
	return k.payload(items, obj, defaultMode, isOptional)
}

// downwardAPIFiles returns the files of a downwardAPI volume or projection.
func (m *Manager) downwardAPIFiles(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]fileProjection, error) {
	alloc, err := m.nodeAllocatable()
	if err != nil {
		return nil, err
	}
	return downwardAPIPayload(items, pod, alloc, defaultMode)
}

// projectedPayload merges the files of a projected volume's sources, later
// sources winning on a shared path. Every failing source is reported, as
// the kubelet does.
func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, src *v1.ProjectedVolumeSource, fsGroup, fsUser *int64) (map[string]fileProjection, error) {
	if src.DefaultMode == nil {
		return nil, errNoDefaultMode
	}
	var errs []error
	payload := map[string]fileProjection{}
	merge := func(p map[string]fileProjection, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for k, v := range p {
			payload[k] = v
		}
	}
	for _, s := range src.Sources {
		switch {
		case s.ConfigMap != nil:
			merge(m.configMaps().files(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, src.DefaultMode))
		case s.Secret != nil:
			merge(m.secrets().files(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, src.DefaultMode))
		case s.DownwardAPI != nil:
			merge(m.downwardAPIFiles(pod, s.DownwardAPI.Items, src.DefaultMode))
		case s.ServiceAccountToken != nil:
			merge(m.tokenPayload(ctx, pod, s.ServiceAccountToken, *src.DefaultMode, fsGroup, fsUser))
		case s.ClusterTrustBundle != nil:
			merge(nil, errors.New("clusterTrustBundle projections are not supported by this node agent"))
		case s.PodCertificate != nil:
			merge(nil, errors.New("podCertificate projections are not supported by this node agent"))
		}
	}
	return payload, aggregate(errs)
}

// tokenPayload returns the file of a serviceAccountToken projection: a
// token bound to the pod, mode 0600 when it is owned by the pod's user or
// fsGroup (fsGroup then makes it 0640), else the volume's defaultMode.
func (m *Manager) tokenPayload(ctx context.Context, pod *v1.Pod, p *v1.ServiceAccountTokenProjection, defaultMode int32, fsGroup, fsUser *int64) (map[string]fileProjection, error) {
	mode := defaultMode
	if fsUser != nil || fsGroup != nil {
		mode = 0o600
	}
	var audiences []string
	if p.Audience != "" {
		audiences = []string{p.Audience}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         audiences,
		ExpirationSeconds: p.ExpirationSeconds,
		BoundObjectRef: &authenticationv1.BoundObjectReference{
			APIVersion: "v1",
			Kind:       "Pod",
			Name:       pod.Name,
			UID:        pod.UID,
		},
	}}
	got, err := m.tokens.get(ctx, m.api.CreateToken, pod.Namespace, pod.Spec.ServiceAccountName, tr)
	if err != nil {
		return nil, err
	}
	return map[string]fileProjection{p.Path: {Data: []byte(got.Status.Token), Mode: mode, FsUser: fsUser}}, nil
}
