//go:build e2e

package e2enode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMaps and Secrets reach pods through the agent's single-object
// watches, which the Node authorizer allows: a Secret created after the
// debug container asked for it lets that container start, and a ConfigMap
// update reaches the volume's file on a later sync.
func TestObjectsFollowTheirWatches(t *testing.T) {
	startAgent(t, "--sync-frequency=2s")
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	ctx := context.Background()
	cms := client.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
		Data:       map[string]string{"mode": "v1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := runningApp(t, ns, "app", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "settings"}}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}
	})

	ec := debugContainer("debugger", "app", "sh", "-c", "echo token=$TOKEN")
	ec.Env = []v1.EnvVar{{Name: "TOKEN", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "late"}, Key: "token"}}}}
	addEphemeral(t, pod, ec)
	got := waitPod(t, ns, pod.Name, "debugger waiting for its secret", 60*time.Second, ephemeralWaiting("debugger", "CreateContainerConfigError"))
	if msg := ephemeralStatus(got, "debugger").State.Waiting.Message; !strings.Contains(msg, `secret "late" not found`) {
		t.Errorf("Waiting message %q, want the kubelet's secret \"late\" not found", msg)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
		StringData: map[string]string{"token": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, pod.Name, "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	if logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "debugger"); !strings.Contains(logs, "token=s3cret") {
		t.Errorf("debugger output %q, want the secret created after it asked", logs)
	}

	cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "v2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(rootDir(), "pods", string(pod.UID), "volumes", "kubernetes.io~configmap", "cfg", "mode")
	waitFor(t, "the ConfigMap update in the volume", 30*time.Second, func(context.Context) (bool, error) {
		b, err := os.ReadFile(file)
		return err == nil && string(b) == "v2", nil
	})
}
