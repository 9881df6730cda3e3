//go:build e2e

package e2enode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// runningApp creates a pod running the distroless app and waits for it.
func runningApp(t *testing.T, ns, name string, mutate ...func(*v1.Pod)) *v1.Pod {
	t.Helper()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "app", Image: distrolessImage, ImagePullPolicy: v1.PullNever}},
		},
	}
	for _, m := range mutate {
		m(pod)
	}
	createPod(t, pod)
	return waitPod(t, ns, name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
}

// addEphemeral adds ephemeral containers (one or a batch) through the
// ephemeralcontainers subresource as kubectl debug does: with a strategic
// merge patch, which the API server applies to the newest pod, so that the
// agent's concurrent status updates cannot make it conflict.
func addEphemeral(t *testing.T, pod *v1.Pod, ecs ...v1.EphemeralContainer) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": ecs}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Pods(pod.Namespace).Patch(context.Background(), pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
	if err != nil {
		names := make([]string, len(ecs))
		for i := range ecs {
			names[i] = ecs[i].Name
		}
		t.Fatalf("add ephemeral containers %s: %v", strings.Join(names, ", "), err)
	}
}

func debugContainer(name, target string, command ...string) v1.EphemeralContainer {
	return v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: name, Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: command},
		TargetContainerName:      target,
	}
}

func ephemeralStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	return containerStatus(p.Status.EphemeralContainerStatuses, name)
}

func ephemeralTerminated(name string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		s := ephemeralStatus(p, name)
		return s != nil && s.State.Terminated != nil
	}
}

func ephemeralWaiting(name, reason string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		s := ephemeralStatus(p, name)
		return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == reason
	}
}

// assertOneEphemeralCRIContainer checks the runtime holds exactly one
// container for the ephemeral container, labelled and annotated as ours.
func assertOneEphemeralCRIContainer(t *testing.T, pod *v1.Pod, name string) *runtimeapi.Container {
	t.Helper()
	cs := criContainers(t, criClient(t), string(pod.UID), name)
	if len(cs) != 1 {
		t.Fatalf("%d CRI containers for ephemeral container %s, want exactly 1", len(cs), name)
	}
	c := cs[0]
	if c.Annotations["io.kubernetes.container.type"] != "ephemeral" || c.Labels["io.kubernetes.pod.name"] != pod.Name ||
		c.Labels["io.kubernetes.pod.namespace"] != pod.Namespace || c.Metadata.Attempt != 0 {
		t.Errorf("CRI container labels %v annotations %v attempt %d", c.Labels, c.Annotations, c.Metadata.Attempt)
	}
	return c
}

func TestDebugDistrolessWithTarget(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "distroless")

	out := mustKubectl(t, "-n", ns, "debug", pod.Name, "--image="+busyboxImage, "--image-pull-policy=Never",
		"--target=app", "--container=debugger", "--", "ps", "-o", "pid,user,args")
	t.Logf("kubectl debug: %s", out)
	got := waitPod(t, ns, pod.Name, "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	s := ephemeralStatus(got, "debugger")
	if s.State.Terminated.ExitCode != 0 || s.State.Terminated.Reason != "Completed" || !strings.HasPrefix(s.ContainerID, "containerd://") || s.ImageID == "" {
		t.Errorf("debugger status = %+v", s)
	}
	logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "debugger")
	// In the target's PID namespace the app is PID 1 and the debugger's
	// ps sees it.
	if !strings.Contains(logs, "/app") {
		t.Errorf("ps in the debugger does not list the app:\n%s", logs)
	}
	dbg := assertOneEphemeralCRIContainer(t, got, "debugger")
	// The CRI runtime joined the target's PID namespace: the debugger's
	// runtime spec names the app's process's namespace.
	app := criContainers(t, criClient(t), string(got.UID), "app")
	if len(app) != 1 {
		t.Fatalf("%d app containers", len(app))
	}
	if want, got := fmt.Sprintf("/proc/%d/ns/pid", criInfo(t, app[0].Id).Pid), criInfo(t, dbg.Id).pidNamespace(); got != want {
		t.Errorf("debugger PID namespace = %q, want the target's %q", got, want)
	}
	if d := mustKubectl(t, "-n", ns, "describe", "pod", pod.Name); !strings.Contains(d, "Ephemeral Containers:") || !strings.Contains(d, "debugger:") {
		t.Errorf("kubectl describe lacks the Ephemeral Containers section:\n%s", d)
	}
	// Events name the ephemeral container by its field path, as the
	// kubelet's do.
	waitFor(t, "Created and Started events of the debugger", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == pod.Name && e.InvolvedObject.FieldPath == "spec.ephemeralContainers{debugger}" {
				reasons[e.Reason] = true
			}
		}
		return reasons["Created"] && reasons["Started"] && reasons["Pulled"], nil
	})
	resp, err := httpsClient(t, "admin").Get("https://127.0.0.1:" + testEnv.agentPort + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"ephemeral_containers_started_total 1", "ephemeral_container_start_duration_seconds_count 1"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
}

func TestDebugSharedProcessNamespace(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "shared", func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) })
	addEphemeral(t, pod, debugContainer("debugger", "", "ps", "-o", "pid,args"))
	waitPod(t, ns, pod.Name, "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "debugger")
	if !strings.Contains(logs, "/app") || !strings.Contains(logs, "/pause") {
		t.Errorf("in a shared PID namespace the debugger should see pause and the app:\n%s", logs)
	}
}

func TestEphemeralExitsAreFinal(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "exits")
	addEphemeral(t, pod, debugContainer("ok", "app", "sh", "-c", "exit 0"))
	addEphemeral(t, pod, debugContainer("bad", "app", "sh", "-c", "exit 3"))
	got := waitPod(t, ns, pod.Name, "both terminated", 60*time.Second, func(p *v1.Pod) bool {
		return ephemeralTerminated("ok")(p) && ephemeralTerminated("bad")(p)
	})
	for name, want := range map[string]struct {
		code   int32
		reason string
	}{"ok": {0, "Completed"}, "bad": {3, "Error"}} {
		s := ephemeralStatus(got, name)
		if s.State.Terminated.ExitCode != want.code || s.State.Terminated.Reason != want.reason || s.RestartCount != 0 || s.Ready {
			t.Errorf("%s status = %+v, want exit %d %s", name, s, want.code, want.reason)
		}
	}
	// Never restarted: half a minute of syncs, relists and resyncs later
	// there is still exactly one runtime container each, still exited.
	time.Sleep(30 * time.Second)
	later, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ok", "bad"} {
		c := assertOneEphemeralCRIContainer(t, later, name)
		if c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("%s runtime state = %s, want exited", name, c.State)
		}
		if s := ephemeralStatus(later, name); s.State.Terminated == nil {
			t.Errorf("%s status changed to %+v", name, s.State)
		}
	}
}

func TestEphemeralImageMissing(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "noimage")

	never := debugContainer("never", "app", "true")
	never.Image = "localhost/does-not-exist:none"
	addEphemeral(t, pod, never)
	waitPod(t, ns, pod.Name, "ErrImageNeverPull", 60*time.Second, ephemeralWaiting("never", "ErrImageNeverPull"))

	ifNotPresent := debugContainer("ifnotpresent", "app", "true")
	ifNotPresent.Image = "localhost/does-not-exist:none"
	ifNotPresent.ImagePullPolicy = v1.PullIfNotPresent
	addEphemeral(t, pod, ifNotPresent)
	waitPod(t, ns, pod.Name, "ErrImagePull, then ImagePullBackOff", 60*time.Second, ephemeralWaiting("ifnotpresent", "ImagePullBackOff"))

	// The app is untouched by its debuggers' failures.
	got, _ := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if s := containerStatus(got.Status.ContainerStatuses, "app"); s.State.Running == nil || s.RestartCount != 0 {
		t.Errorf("app status = %+v", s)
	}
	if n := len(criContainers(t, criClient(t), string(pod.UID), "never")); n != 0 {
		t.Errorf("%d CRI containers for an image that was never there", n)
	}
}

func TestEphemeralTargetNotStartedYet(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "slow-init", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			InitContainers:                []v1.Container{{Name: "wait", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "8"}}},
			Containers:                    []v1.Container{{Name: "app", Image: distrolessImage, ImagePullPolicy: v1.PullNever}},
		},
	})
	waitPod(t, ns, pod.Name, "init running", 60*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.InitContainerStatuses, "wait")
		return s != nil && s.State.Running != nil
	})
	addEphemeral(t, pod, debugContainer("debugger", "app", "sh", "-c", "ps -o args; sleep 1"))
	got := waitPod(t, ns, pod.Name, "CreateContainerConfigError", 30*time.Second, ephemeralWaiting("debugger", "CreateContainerConfigError"))
	if msg := ephemeralStatus(got, "debugger").State.Waiting.Message; !strings.Contains(msg, "unable to find target container app") {
		t.Errorf("waiting message = %q", msg)
	}
	// Once the app runs, the retry succeeds: exactly once.
	waitPod(t, ns, pod.Name, "debugger terminated after the target started", 90*time.Second, ephemeralTerminated("debugger"))
	assertOneEphemeralCRIContainer(t, got, "debugger")
	if logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "debugger"); !strings.Contains(logs, "/app") {
		t.Errorf("debugger did not see the target:\n%s", logs)
	}
}

func TestEphemeralVolumeAndEnv(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
		Data:       map[string]string{"mode": "debugging", "file.txt": "from-configmap"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := runningApp(t, ns, "withvol", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "settings"}}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}
	})
	ec := debugContainer("debugger", "app", "sh", "-c", "echo mode=$MODE; cat /cfg/file.txt")
	ec.Env = []v1.EnvVar{{Name: "MODE", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "settings"}, Key: "mode"}}}}
	ec.VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg", ReadOnly: true}}
	addEphemeral(t, pod, ec)
	got := waitPod(t, ns, pod.Name, "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	if s := ephemeralStatus(got, "debugger"); s.State.Terminated.ExitCode != 0 {
		t.Errorf("debugger status = %+v", s.State.Terminated)
	}
	logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "debugger")
	if !strings.Contains(logs, "mode=debugging") || !strings.Contains(logs, "from-configmap") {
		t.Errorf("debugger output = %q, want the ConfigMap key in env and the volume's file", logs)
	}
}

func TestEphemeralSurvivesAgentSIGKILL(t *testing.T) {
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "sigkill")
	addEphemeral(t, pod, debugContainer("debugger", "app", "sleep", "3600"))
	a.kill() // right after the update: the start may or may not have happened
	startAgent(t)
	got := waitPod(t, ns, pod.Name, "debugger running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "debugger")
		return s != nil && s.State.Running != nil
	})
	time.Sleep(3 * time.Second)
	assertOneEphemeralCRIContainer(t, got, "debugger")
}

func TestEphemeralSurvivesContainerdRestart(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "crirestart")
	addEphemeral(t, pod, debugContainer("debugger", "app", "sleep", "3600"))
	got := waitPod(t, ns, pod.Name, "debugger running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "debugger")
		return s != nil && s.State.Running != nil
	})
	before := ephemeralStatus(got, "debugger").ContainerID

	clusterScript(t, "stop", "containerd")
	clusterScript(t, "start", "containerd")
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	time.Sleep(5 * time.Second) // relists and syncs against the restarted runtime
	after, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := ephemeralStatus(after, "debugger"); s.ContainerID != before || s.State.Running == nil {
		t.Errorf("after the containerd restart: %+v, want still running as %s", s, before)
	}
	assertOneEphemeralCRIContainer(t, after, "debugger")
}

// criVerboseInfo is the part of containerd's verbose ContainerStatus info
// the tests read.
type criVerboseInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec struct {
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

func (i criVerboseInfo) pidNamespace() string {
	for _, ns := range i.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "pid" {
			return ns.Path
		}
	}
	return ""
}

func criInfo(t *testing.T, id string) criVerboseInfo {
	t.Helper()
	resp, err := criClient(t).ContainerStatus(context.Background(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	var info criVerboseInfo
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("decode verbose info of %s: %v", id, err)
	}
	return info
}
