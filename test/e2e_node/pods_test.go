//go:build e2e

package e2enode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeploymentsRun(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	rs := criClient(t)

	for _, d := range []struct {
		name, image string
		command     []string
	}{
		{"shell", busyboxImage, []string{"sh", "-c", "echo started; sleep 3600"}},
		{"distroless", distrolessImage, nil},
	} {
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: d.name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": d.name}},
				Template: v1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": d.name}},
					Spec: v1.PodSpec{
						TerminationGracePeriodSeconds: ptr.To[int64](2),
						Containers:                    []v1.Container{{Name: "app", Image: d.image, ImagePullPolicy: v1.PullNever, Command: d.command}},
					},
				},
			},
		}
		if _, err := client.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"shell", "distroless"} {
		var pod *v1.Pod
		waitFor(t, "deployment "+name+" available", 90*time.Second, func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil || len(pods.Items) != 1 {
				return false, err
			}
			pod = &pods.Items[0]
			return pod.Status.Phase == v1.PodRunning && podReady(pod), nil
		})
		cs := containerStatus(pod.Status.ContainerStatuses, "app")
		if cs == nil || cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started {
			t.Fatalf("%s: container status = %+v", name, cs)
		}
		if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.Image == "" || cs.RestartCount != 0 {
			t.Errorf("%s: containerID %q imageID %q image %q restarts %d", name, cs.ContainerID, cs.ImageID, cs.Image, cs.RestartCount)
		}
		if pod.Status.PodIP == "" || pod.Status.HostIP != os.Getenv("EA_NODE_IP") || pod.Status.StartTime == nil || pod.Status.QOSClass != v1.PodQOSBestEffort {
			t.Errorf("%s: podIP %q hostIP %q startTime %v qos %s", name, pod.Status.PodIP, pod.Status.HostIP, pod.Status.StartTime, pod.Status.QOSClass)
		}
		if n := len(criContainers(t, rs, string(pod.UID), "app")); n != 1 {
			t.Errorf("%s: %d CRI containers, want 1", name, n)
		}
	}

	// kubectl logs, plain and followed, through the API server and the
	// agent's /containerLogs.
	out := mustKubectl(t, "-n", ns, "logs", "deploy/shell")
	if !strings.Contains(out, "started") {
		t.Errorf("kubectl logs = %q, want the container's output", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	follow := strings.Builder{}
	cmd := kubectlCmd(ctx, "-n", ns, "logs", "-f", "deploy/distroless")
	cmd.Stdout = &follow
	_ = cmd.Run() // ends when ctx does: the app logs forever
	if ticks := strings.Count(follow.String(), "tick"); ticks < 3 {
		t.Errorf("kubectl logs -f over 5s showed %d ticks, want at least 3:\n%s", ticks, follow.String())
	}
}

func TestJobs(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)

	for _, j := range []struct {
		name  string
		code  string
		phase v1.PodPhase
		cond  batchv1.JobConditionType
	}{
		{"succeeds", "0", v1.PodSucceeded, batchv1.JobComplete},
		{"fails", "3", v1.PodFailed, batchv1.JobFailed},
	} {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: j.name, Namespace: ns},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: v1.PodTemplateSpec{Spec: v1.PodSpec{
					RestartPolicy: v1.RestartPolicyNever,
					Containers:    []v1.Container{{Name: "work", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "echo working; echo reason-" + j.code + " > /dev/termination-log; exit " + j.code}}},
				}},
			},
		}
		if _, err := client.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "job "+j.name+" "+string(j.cond), 90*time.Second, func(ctx context.Context) (bool, error) {
			got, err := client.BatchV1().Jobs(ns).Get(ctx, j.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == j.cond && c.Status == v1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "job-name=" + j.name})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("job %s pods: %v, %d", j.name, err, len(pods.Items))
		}
		p := pods.Items[0]
		cs := containerStatus(p.Status.ContainerStatuses, "work")
		if p.Status.Phase != j.phase || cs == nil || cs.State.Terminated == nil {
			t.Fatalf("job %s pod phase %s status %+v", j.name, p.Status.Phase, cs)
		}
		wantReason := map[v1.PodPhase]string{v1.PodSucceeded: "Completed", v1.PodFailed: "Error"}[j.phase]
		if cs.State.Terminated.Reason != wantReason || cs.State.Terminated.ExitCode != map[string]int32{"0": 0, "3": 3}[j.code] {
			t.Errorf("job %s terminated = %+v, want reason %s", j.name, cs.State.Terminated, wantReason)
		}
		if msg := cs.State.Terminated.Message; msg != "reason-"+j.code+"\n" {
			t.Errorf("job %s termination message = %q, want what the container wrote to /dev/termination-log", j.name, msg)
		}
	}
}

func TestInitContainers(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "with-init", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			InitContainers: []v1.Container{
				{Name: "first", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "echo one > /work/one"},
					VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/work"}}},
				{Name: "second", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "test -f /work/one && sleep 1"},
					VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/work"}}},
			},
			Containers: []v1.Container{{Name: "main", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "cat /work/one; sleep 3600"},
				VolumeMounts: []v1.VolumeMount{{Name: "work", MountPath: "/work"}}}},
			Volumes: []v1.Volume{{Name: "work", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
	})
	got := waitPod(t, ns, pod.Name, "Running and Ready", 90*time.Second, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning && podReady(p) })
	for _, name := range []string{"first", "second"} {
		cs := containerStatus(got.Status.InitContainerStatuses, name)
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("init container %s status = %+v, want Terminated Completed", name, cs)
		}
	}
	var initialized bool
	for _, c := range got.Status.Conditions {
		initialized = initialized || (c.Type == v1.PodInitialized && c.Status == v1.ConditionTrue)
	}
	if !initialized {
		t.Errorf("conditions = %+v, want Initialized True", got.Status.Conditions)
	}
	if out := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "main"); !strings.Contains(out, "one") {
		t.Errorf("main container did not see the init container's file: %q", out)
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crasher", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "crash", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "echo crashing; exit 2"}}},
		},
	})
	got := waitPod(t, ns, pod.Name, "CrashLoopBackOff", 90*time.Second, func(p *v1.Pod) bool {
		cs := containerStatus(p.Status.ContainerStatuses, "crash")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := containerStatus(got.Status.ContainerStatuses, "crash")
	if cs.RestartCount < 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 {
		t.Errorf("status in backoff = %+v, want restarts >= 1 and last exit 2", cs)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=crash") {
		t.Errorf("waiting message = %q", cs.State.Waiting.Message)
	}
	if out := mustKubectl(t, "-n", ns, "logs", pod.Name, "--previous"); !strings.Contains(out, "crashing") {
		t.Errorf("kubectl logs --previous = %q", out)
	}
}

func TestDeletionLeavesNothingBehind(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	rs := criClient(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "doomed", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				// Exits at once on TERM, so deletion takes well under the grace period.
				Command:      []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"},
				VolumeMounts: []v1.VolumeMount{{Name: "mem", MountPath: "/mem"}}}},
			Volumes: []v1.Volume{{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}}},
		},
	})
	waitPod(t, ns, pod.Name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	podDir := rootDir() + "/pods/" + string(pod.UID)
	if len(mountsUnder(t, podDir)) == 0 {
		t.Errorf("no tmpfs mounted under %s for the Memory emptyDir", podDir)
	}

	if err := client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, ns, pod.Name, 60*time.Second)
	waitFor(t, "CRI objects and mounts of the deleted pod to be removed", 30*time.Second, func(ctx context.Context) (bool, error) {
		return len(criSandboxes(t, rs, string(pod.UID))) == 0 && len(criContainers(t, rs, string(pod.UID), "")) == 0 &&
			len(mountsUnder(t, podDir)) == 0, nil
	})

	// Deleting the namespace deletes its pods through the same path.
	other := runningApp(t, ns, "in-namespace")
	if err := client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "namespace "+ns+" to be gone", 90*time.Second, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	waitFor(t, "CRI objects of the namespace's pod to be removed", 30*time.Second, func(ctx context.Context) (bool, error) {
		return len(criSandboxes(t, rs, string(other.UID))) == 0 && len(criContainers(t, rs, string(other.UID), "")) == 0 &&
			len(mountsUnder(t, rootDir()+"/pods/"+string(other.UID))) == 0, nil
	})
}

func TestAgentRestartStartsNothingTwice(t *testing.T) {
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	rs := criClient(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "steady", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			InitContainers:                []v1.Container{{Name: "init", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"true"}}},
			Containers:                    []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}},
		},
	})
	before := waitPod(t, ns, pod.Name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	idBefore := containerStatus(before.Status.ContainerStatuses, "app").ContainerID

	a.kill()
	startAgent(t)
	time.Sleep(3 * time.Second) // a few relists and syncs of the new agent
	after := waitPod(t, ns, pod.Name, "Running", 30*time.Second, phaseIs(v1.PodRunning))
	cs := containerStatus(after.Status.ContainerStatuses, "app")
	if cs.ContainerID != idBefore || cs.RestartCount != 0 {
		t.Errorf("after the agent restart: container %s restarts %d, want %s and 0", cs.ContainerID, cs.RestartCount, idBefore)
	}
	for _, name := range []string{"init", "app"} {
		if n := len(criContainers(t, rs, string(pod.UID), name)); n != 1 {
			t.Errorf("%d CRI containers named %s, want 1", n, name)
		}
	}
	if n := len(criSandboxes(t, rs, string(pod.UID))); n != 1 {
		t.Errorf("%d CRI sandboxes, want 1", n)
	}
}

func TestPodsDeletedWhileAgentDownAreCleaned(t *testing.T) {
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	rs := criClient(t)
	pod := runningApp(t, ns, "orphan")

	a.kill()
	// With the node's agent gone, only a forced deletion removes the pod.
	if err := client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, ns, pod.Name, 30*time.Second)
	if n := len(criSandboxes(t, rs, string(pod.UID))); n == 0 {
		t.Fatal("the sandbox vanished while no agent ran; the test proves nothing")
	}

	startAgent(t)
	waitFor(t, "the restarted agent to remove the orphaned pod", 30*time.Second, func(ctx context.Context) (bool, error) {
		return len(criSandboxes(t, rs, string(pod.UID))) == 0 && len(criContainers(t, rs, string(pod.UID), "")) == 0 &&
			len(mountsUnder(t, rootDir()+"/pods/"+string(pod.UID))) == 0, nil
	})
}

// The documented subPathExpr example: POD_NAME from the downward API names
// the container's directory in the volume (issue 12: valueFrom variables
// were not expanded and the container failed with
// CreateContainerConfigError).
func TestSubPathExprWithDownwardAPIEnv(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "subpath-expr", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command: []string{"sh", "-c", "echo hello > /logs/out; sleep 3600"},
				Env: []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{
					FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
				VolumeMounts: []v1.VolumeMount{{Name: "logs", MountPath: "/logs", SubPathExpr: "$(POD_NAME)"}}}},
			Volumes: []v1.Volume{{Name: "logs", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
	})
	got := waitPod(t, ns, pod.Name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	file := filepath.Join(rootDir(), "pods", string(got.UID), "volumes", "kubernetes.io~empty-dir", "logs", pod.Name, "out")
	waitFor(t, "the container's file in its subPathExpr directory", 30*time.Second, func(context.Context) (bool, error) {
		b, err := os.ReadFile(file)
		return err == nil && string(b) == "hello\n", nil
	})
}
