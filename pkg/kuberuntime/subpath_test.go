package kuberuntime

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// envMounter records the environment each container's mounts were asked
// with and mounts the one volumeMount's subPathExpr as given.
type envMounter struct {
	env   map[string]map[string]string
	calls int
}

func (m *envMounter) SetUp(context.Context, *v1.Pod) (Mounter, error) { return m, nil }
func (*envMounter) TearDown(context.Context, types.UID) error         { return nil }

func (m *envMounter) MountsWithEnv(c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	m.calls++
	m.env[c.Name] = env
	return []*runtimeapi.Mount{{ContainerPath: "/logs", HostPath: "/vol/" + env["POD_NAME"]}}, nil
}

// The documented subPathExpr example: POD_NAME from the downward API
// (valueFrom fieldRef metadata.name) names the container's directory. It
// failed with CreateContainerConfigError when only literal env values were
// used (issue 12).
func TestSyncSubPathExprUsesValueFromEnv(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) {
		c := &p.Spec.Containers[0]
		c.Env = []v1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "DIR", Value: "logs-$(POD_NAME)"},
		}
		c.VolumeMounts = []v1.VolumeMount{{Name: "logs", MountPath: "/logs", SubPathExpr: "$(POD_NAME)"}}
		p.Spec.Volumes = []v1.Volume{{Name: "logs", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	})
	s, _, st, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	mounter := &envMounter{env: map[string]map[string]string{}}
	rec := &configRecorder{Runtime: s.Runtime}
	s.Volumes, s.Runtime = mounter, rec
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatalf("sync: %v (waiting %v)", err, st.waiting)
	}
	env := mounter.env["app"]
	if env["POD_NAME"] != pod.Name || env["DIR"] != "logs-"+pod.Name {
		t.Errorf("mounts asked with env %v, want POD_NAME=%s and DIR expanded", env, pod.Name)
	}
	if len(rec.configs) != 1 {
		t.Fatalf("%d containers created, want 1", len(rec.configs))
	}
	var found bool
	for _, m := range rec.configs[0].Mounts {
		found = found || (m.ContainerPath == "/logs" && m.HostPath == "/vol/"+pod.Name)
	}
	if !found {
		t.Errorf("container mounts = %v, want /logs from /vol/%s", rec.configs[0].Mounts, pod.Name)
	}
}

// An environment that cannot be resolved fails the container before its
// mounts are prepared, with the env's message, as the kubelet orders it.
func TestSyncEnvErrorComesBeforeMounts(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(func(p *v1.Pod) {
		c := &p.Spec.Containers[0]
		c.Env = []v1.EnvVar{{Name: "BAD", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.nope"}}}}
		c.VolumeMounts = []v1.VolumeMount{{Name: "logs", MountPath: "/logs", SubPathExpr: "$(BAD)"}}
	})
	s, rt, st, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	mounter := &envMounter{env: map[string]map[string]string{}}
	s.Volumes = mounter
	_, _ = s.SyncPod(ctx, pod.UID)
	w := st.waiting[podstate.ContainerKey{Type: regT, Name: "app"}]
	if w.Reason != ReasonCreateContainerConfigError {
		t.Errorf("waiting = %+v, want %s", w, ReasonCreateContainerConfigError)
	}
	if mounter.calls != 0 {
		t.Errorf("mounts prepared %d times for a container whose env failed", mounter.calls)
	}
	if n := len(containersNamed(t, rt, "app")); n != 0 {
		t.Errorf("%d containers created", n)
	}
}
