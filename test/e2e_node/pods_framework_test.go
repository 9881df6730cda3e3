//go:build e2e

package e2enode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// Images built by hack/build-images.sh and imported into the e2e runtime.
const (
	busyboxImage     = "localhost/busybox:test"
	distrolessImage  = "localhost/distroless-app:test"
	podUIDLabel      = "io.kubernetes.pod.uid"
	containerNameLbl = "io.kubernetes.container.name"
)

// criClient connects to the e2e runtime, to assert what it really holds.
func criClient(t *testing.T) internalapi.RuntimeService {
	t.Helper()
	rs, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(os.Getenv("CONTAINER_RUNTIME_ENDPOINT")).
		WithConnectionTimeout(10 * time.Second).
		Build(context.Background())
	if err != nil {
		t.Fatalf("connect to CRI: %v", err)
	}
	return rs
}

// criContainers returns the pod's CRI containers named name ("" for all).
func criContainers(t *testing.T, rs internalapi.RuntimeService, uid, name string) []*runtimeapi.Container {
	t.Helper()
	sel := map[string]string{podUIDLabel: uid}
	if name != "" {
		sel[containerNameLbl] = name
	}
	cs, err := rs.ListContainers(context.Background(), &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		t.Fatalf("list CRI containers: %v", err)
	}
	return cs
}

func criSandboxes(t *testing.T, rs internalapi.RuntimeService, uid string) []*runtimeapi.PodSandbox {
	t.Helper()
	sbs, err := rs.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{podUIDLabel: uid}})
	if err != nil {
		t.Fatalf("list CRI sandboxes: %v", err)
	}
	return sbs
}

// createNamespace makes a namespace for one test and deletes it at the end,
// waiting until it is gone (so its pods were really removed).
func createNamespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + "-" + rand.String(5)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods are refused until the controller manager made the default
	// service account.
	waitFor(t, "the default service account", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

func createPod(t *testing.T, pod *v1.Pod) *v1.Pod {
	t.Helper()
	p, err := client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	return p
}

// waitPod waits until cond holds for the pod and returns it.
func waitPod(t *testing.T, ns, name, what string, timeout time.Duration, cond func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	var pod *v1.Pod
	waitFor(t, fmt.Sprintf("pod %s/%s: %s", ns, name, what), timeout, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return cond(p), nil
	})
	return pod
}

func phaseIs(phase v1.PodPhase) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool { return p.Status.Phase == phase }
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// waitPodGone waits until the pod object is deleted.
func waitPodGone(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pod %s/%s to be gone", ns, name), timeout, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// kubectl runs the control plane's kubectl against the e2e cluster.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mountsUnder lists the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], filepath.Clean(dir)+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func containerStatus(statuses []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}

func kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "kubectl", args...)
}

// rootDir is the agent's --root-dir in the e2e environment.
func rootDir() string { return os.Getenv("EA_AGENT_ROOT_DIR") }
