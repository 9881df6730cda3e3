//go:build e2e

package e2enode

// Exactly-once of ephemeral containers, end to end: a debug command runs
// once, never twice (not after an agent restart, not after the runtime lost
// its container, not in a re-created sandbox) and at least once (an agent
// killed mid-start runs it after its restart); and a debugger runs in pods
// whose own containers do not (a missing or crash-looping init container, a
// crash-looping app, an image pull that hangs).
//
// Every counting debugger proves its own runs: it appends a line to a file
// of an emptyDir it shares with the app container, and the test counts the
// lines on the host. 0 lines is a lost debugger, 2 a duplicate.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// sharedVolume is the emptyDir an app container shares with its debuggers.
const sharedVolume = "shared"

// sharedAppPod is a pod whose app container has a shell and mounts the
// shared emptyDir at /shared. It exits at once on SIGTERM, so deletion
// takes well under its 2s grace period.
func sharedAppPod(ns, name string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command:      []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"},
				VolumeMounts: []v1.VolumeMount{{Name: sharedVolume, MountPath: "/shared"}}}},
			Volumes: []v1.Volume{{Name: sharedVolume, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
	}
}

// runningSharedApp creates a sharedAppPod and waits until it runs.
func runningSharedApp(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	createPod(t, sharedAppPod(ns, name))
	return waitPod(t, ns, name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
}

// countingDebugger is an ephemeral container that appends "ran" to
// /shared/NAME, then sleeps for the given seconds. kubectl debug cannot
// add volumeMounts: it is added through the ephemeralcontainers
// subresource (addEphemeral).
func countingDebugger(name string, sleepSeconds int) v1.EphemeralContainer {
	ec := debugContainer(name, "", "sh", "-c", fmt.Sprintf("echo ran >> /shared/%s; sleep %d", name, sleepSeconds))
	ec.VolumeMounts = []v1.VolumeMount{{Name: sharedVolume, MountPath: "/shared"}}
	return ec
}

// sharedDir is the shared emptyDir of the pod on the host, as the agent's
// volume layout puts it (pkg/volume/layout.go).
func sharedDir(pod *v1.Pod) string {
	return filepath.Join(rootDir(), "pods", string(pod.UID), "volumes", "kubernetes.io~empty-dir", sharedVolume)
}

// runs counts the runs of the counting debugger name of pod, reading the
// shared emptyDir on the host (which outlives the pod's containers and
// sandboxes).
func runs(t *testing.T, pod *v1.Pod, name string) int {
	t.Helper()
	dir := sharedDir(pod)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the pod's emptyDir on the host: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatalf("read the runs of %s: %v", name, err)
	}
	return strings.Count(string(b), "ran\n")
}

// recordPath is where the agent keeps the durable start record of the
// pod's ephemeral container name (pkg/podstate/records.go).
func recordPath(pod *v1.Pod, name string) string {
	return filepath.Join(rootDir(), "pods", string(pod.UID), "ephemeral-containers", name)
}

// crictl runs the environment's crictl against the e2e runtime.
func crictl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ep := os.Getenv("CONTAINER_RUNTIME_ENDPOINT")
	out, err := exec.CommandContext(ctx, "crictl", append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "30s"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// describeCRI says, for a log line, what the runtime holds of the pod's
// container name: each instance's ID and state.
func describeCRI(cs []*runtimeapi.Container) string {
	if len(cs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%.12s %s", c.Id, c.State))
	}
	return strings.Join(parts, ", ")
}

// ephemeralEvents returns the Events of that reason about ephemeral container
// name of the pod and their total count (an Event repeated is one object
// whose count goes up).
func ephemeralEvents(t *testing.T, pod *v1.Pod, name, reason string) (int, []v1.Event) {
	t.Helper()
	evs, err := client.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []v1.Event
	n := 0
	for _, e := range evs.Items {
		if e.InvolvedObject.Name != pod.Name || e.InvolvedObject.UID != pod.UID || e.Reason != reason {
			continue
		}
		if e.InvolvedObject.FieldPath != "spec.ephemeralContainers{"+name+"}" && !strings.Contains(e.Message, name) {
			continue
		}
		out = append(out, e)
		n += max(int(e.Count), 1)
	}
	return n, out
}

func describeEvents(evs []v1.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s %s %s count=%d %q", e.Type, e.Reason, e.InvolvedObject.FieldPath, e.Count, e.Message))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func getPod(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	p, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return p
}

// agentServes reports whether an agent answers healthz on the
// environment's port.
func agentServes() bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://127.0.0.1:" + testEnv.healthzPort + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// cleanupPods deletes the namespace's pods. While an agent serves, they
// are deleted gracefully and waited for; what remains then, or when no
// agent runs, is deleted forcibly so no pod stays for the next test (the
// next agent removes what a forced deletion left in the runtime). Tests
// call it at their end, while their agent runs, and it is registered as a
// cleanup for those that stop early.
func cleanupPods(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	list := func() []v1.Pod {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil
		}
		return pods.Items
	}
	pods := list()
	if len(pods) == 0 {
		return
	}
	if agentServes() {
		for _, p := range pods {
			_ = client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(pods) > 0 && time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			pods = list()
		}
	}
	for _, p := range pods {
		t.Logf("force-deleting pod %s/%s", ns, p.Name)
		_ = client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}
}

// onceNamespace is createNamespace whose pods are cleaned up by
// cleanupPods.
func onceNamespace(t *testing.T) string {
	t.Helper()
	ns := createNamespace(t)
	t.Cleanup(func() { cleanupPods(t, ns) })
	return ns
}

// endedOnce accepts the two ends of a debugger whose agent was killed while
// starting it and that ran once: its own exit 0, or, when the kill aborted
// containerd's StartContainer after the task existed (the command had
// begun, and containerd killed it), the runtime's StartError 128 with a
// cancellation message. Running it again then would be a second run.
func endedOnce(t *v1.ContainerStateTerminated) bool {
	if t == nil {
		return false
	}
	if t.ExitCode == 0 && t.Reason == "Completed" {
		return true
	}
	return t.ExitCode == 128 && t.Reason == "StartError" && strings.Contains(t.Message, "failed to start containerd task")
}

// ranOnce is the exactly-once verdict on a debugger that ran n times
// (counted by its own command) and ended as t. Never twice. Once, but for
// one window: an agent killed while containerd started the task ends the
// debugger as StartError "failed to start containerd task ... context
// canceled", and containerd cannot tell whether the process had begun (it
// kills it if so). The agent never runs it again then (a second run is the
// worse failure: a debug command may be kill 1 or a migration), and the
// status says why; the test logs a run that this window lost.
func ranOnce(n int, t *v1.ContainerStateTerminated) bool {
	switch {
	case n == 1:
		return true
	case n == 0 && t != nil && t.Reason == "StartError" && strings.Contains(t.Message, "failed to start containerd task") && strings.Contains(t.Message, "context canceled"):
		return true
	}
	return false
}

// TestOnceAgentKilledMidStart SIGKILLs the agent at each point of a debug
// container's start (before CreateContainer, between Create and Start,
// during Start, after the command ran), three times each, and restarts it:
// every debug command ran exactly once (counted by the command itself) and
// its status ends Terminated (see endedOnce).
func TestOnceAgentKilledMidStart(t *testing.T) {
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pod := runningSharedApp(t, ns, "killed")
	rs := criClient(t)

	// held polls until the runtime holds a container named name.
	held := func(name string) {
		deadline := time.Now().Add(30 * time.Second)
		for len(criContainers(t, rs, string(pod.UID), name)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the runtime held no container %s within 30s", name)
			}
		}
	}
	points := []struct {
		name string
		// reach returns once the start of debugger name (in round
		// 1..3) reached the point where the agent is to be killed.
		reach func(name string, round int)
	}{
		// Right after the request: before the agent could create anything
		// (or just as it does).
		{"request", func(string, int) {}},
		// As soon as the runtime holds the container: CreateContainer
		// returned (or is returning), StartContainer not yet called.
		{"created", func(name string, _ int) { held(name) }},
		// During StartContainer, which takes containerd and runc some
		// 150-200ms here: 30, 80 and 130ms after the container appeared.
		{"starting", func(name string, round int) {
			held(name)
			time.Sleep(time.Duration(30+50*(round-1)) * time.Millisecond)
		}},
		// Right after it ran: the instant its line is written (polled
		// without pause, so this may still be inside StartContainer), it
		// still sleeps.
		{"ran", func(name string, _ int) {
			deadline := time.Now().Add(30 * time.Second)
			for runs(t, pod, name) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("debugger %s did not run within 30s", name)
				}
			}
		}},
	}

	var names []string
	var restartedAt time.Time
	for round := 1; round <= 3; round++ {
		for _, pt := range points {
			name := fmt.Sprintf("%s-%d", pt.name, round)
			addEphemeral(t, pod, countingDebugger(name, 2))
			pt.reach(name, round)
			a.kill()
			t.Logf("SIGKILLed the agent at %q of %s: the runtime held %s; runs %d", pt.name, name,
				describeCRI(criContainers(t, rs, string(pod.UID), name)), runs(t, pod, name))
			a = startAgent(t)
			restartedAt = time.Now()
			got := waitPod(t, ns, pod.Name, name+" terminated", 60*time.Second, ephemeralTerminated(name))
			if s := ephemeralStatus(got, name); !endedOnce(s.State.Terminated) {
				t.Errorf("%s: status after the restart = %+v, want Terminated exit 0 Completed, or the runtime's StartError for a start it aborted once the command had begun", name, s.State.Terminated)
			}
			if n := runs(t, pod, name); !ranOnce(n, ephemeralStatus(got, name).State.Terminated) {
				t.Errorf("%s (agent killed at %q): ran %d times, want exactly 1", name, pt.name, n)
			} else if n == 0 {
				t.Logf("NOTE: %s never ran: the kill aborted containerd's start of its task before the process began; it ends as %+v", name, ephemeralStatus(got, name).State.Terminated)
			}
			names = append(names, name)
		}
	}

	// A late run would show within seconds of the last restart: wait 20s,
	// then every debugger still ran once, and each is one runtime container.
	time.Sleep(time.Until(restartedAt.Add(20 * time.Second)))
	got := getPod(t, ns, pod.Name)
	total := 0
	for _, name := range names {
		n := runs(t, pod, name)
		total += n
		if s := ephemeralStatus(got, name); s == nil || !ranOnce(n, s.State.Terminated) {
			t.Errorf("%s: ran %d times by the end, want exactly 1", name, n)
		}
		if s := ephemeralStatus(got, name); s == nil || !endedOnce(s.State.Terminated) {
			t.Errorf("%s: final status = %+v, want Terminated as above", name, s)
		}
		if cs := criContainers(t, rs, string(pod.UID), name); len(cs) != 1 {
			t.Errorf("%s: the runtime holds %s, want exactly one container", name, describeCRI(cs))
		}
	}
	// The app container sees the same files (the host path is the volume).
	out := mustKubectl(t, "-n", ns, "exec", pod.Name, "-c", "app", "--", "sh", "-c", "cat /shared/* | wc -l")
	if strings.TrimSpace(out) != fmt.Sprint(total) {
		t.Errorf("kubectl exec counts %q lines in /shared, want %d", strings.TrimSpace(out), total)
	}
	cleanupPods(t, ns)
}

// TestOnceRuntimeContainerRemoved removes debug containers from the runtime
// behind the agent's back (crictl rm of an exited one; crictl stop and rm of
// a running one; crictl rm of one whose start record was deleted by hand
// first): none is created again, each is reported Terminated, and the loss
// is told in one ContainerLost Event.
func TestOnceRuntimeContainerRemoved(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pod := runningSharedApp(t, ns, "removed")
	rs := criClient(t)

	const exited, running, norecord = "gone-exited", "gone-running", "gone-norecord"
	addEphemeral(t, pod, countingDebugger(exited, 0))
	addEphemeral(t, pod, countingDebugger(running, 3600))
	addEphemeral(t, pod, countingDebugger(norecord, 0))
	got := waitPod(t, ns, pod.Name, "two debuggers terminated, one running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, running)
		return ephemeralTerminated(exited)(p) && ephemeralTerminated(norecord)(p) && s != nil && s.State.Running != nil
	})
	ids := map[string]string{}
	for _, name := range []string{exited, running, norecord} {
		if n := runs(t, pod, name); n != 1 {
			t.Fatalf("%s ran %d times before anything was removed, want 1", name, n)
		}
		ids[name] = assertOneEphemeralCRIContainer(t, got, name).Id
	}
	for _, name := range []string{exited, norecord} {
		if s := ephemeralStatus(got, name); s.State.Terminated.ExitCode != 0 {
			t.Fatalf("%s status before the removal = %+v, want exit 0", name, s.State.Terminated)
		}
	}

	// The start record of norecord goes first: the reported status alone
	// must say it was created.
	rec := recordPath(pod, norecord)
	if _, err := os.Stat(rec); err != nil {
		t.Errorf("no durable start record for %s: %v", norecord, err)
	}
	if err := os.Remove(rec); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	crictl(t, "rm", ids[exited], ids[norecord])
	crictl(t, "stop", "--timeout", "0", ids[running])
	crictl(t, "rm", ids[running])
	t.Logf("removed %s, %s and (stopped, then removed) %s from the runtime", exited, norecord, running)

	// Never created again: half a minute of relists and syncs.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, name := range []string{exited, running, norecord} {
			if cs := criContainers(t, rs, string(pod.UID), name); len(cs) != 0 {
				t.Fatalf("%s was created again after its removal: the runtime holds %s", name, describeCRI(cs))
			}
		}
		time.Sleep(500 * time.Millisecond)
	}

	got = getPod(t, ns, pod.Name)
	for _, name := range []string{exited, running, norecord} {
		if n := runs(t, pod, name); n != 1 {
			t.Errorf("%s ran %d times, want exactly 1", name, n)
		}
		s := ephemeralStatus(got, name)
		if s == nil || s.State.Terminated == nil {
			t.Errorf("%s status after its removal = %+v, want Terminated", name, s)
			continue
		}
		term := s.State.Terminated
		t.Logf("%s after its removal: Terminated exit %d %s %q", name, term.ExitCode, term.Reason, term.Message)
		switch name {
		case exited, norecord:
			// Its last known state is kept.
			if term.ExitCode != 0 {
				t.Errorf("%s: Terminated %+v, want its exit 0 kept", name, term)
			}
		case running:
			// Nothing known of its end: 137 ContainerStatusUnknown. Had
			// the agent seen the stop before the removal, the exit it saw
			// (137 Error, SIGKILL) is its last known state.
			if term.ExitCode != 137 || (term.Reason != "ContainerStatusUnknown" && term.Reason != "Error") {
				t.Errorf("%s: Terminated %+v, want exit 137 ContainerStatusUnknown", name, term)
			} else if term.Reason != "ContainerStatusUnknown" {
				t.Logf("%s: Terminated %s %d: the agent saw the stop before the removal", name, term.Reason, term.ExitCode)
			}
		}
		if n, evs := ephemeralEvents(t, got, name, "ContainerLost"); n != 1 {
			t.Errorf("%s: %d ContainerLost Events %s, want exactly 1", name, n, describeEvents(evs))
		} else if evs[0].Type != v1.EventTypeWarning {
			t.Errorf("%s: ContainerLost Event of type %s, want Warning", name, evs[0].Type)
		}
	}
}

// TestOnceDeletingPodSandboxRemoved deletes a pod with a terminated debug
// container while the agent is down, and removes its sandbox from the
// runtime before the agent returns: the pod is still gone within its grace
// period plus a few seconds.
func TestOnceDeletingPodSandboxRemoved(t *testing.T) {
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pod := runningSharedApp(t, ns, "deleting")
	rs := criClient(t)
	addEphemeral(t, pod, countingDebugger("dbg", 0))
	waitPod(t, ns, pod.Name, "dbg terminated", 60*time.Second, ephemeralTerminated("dbg"))
	if n := runs(t, pod, "dbg"); n != 1 {
		t.Errorf("dbg ran %d times, want 1", n)
	}

	if err := a.stop(30 * time.Second); err != nil {
		t.Logf("agent exit on SIGTERM: %v", err)
	}
	mustKubectl(t, "-n", ns, "delete", "pod", pod.Name, "--wait=false")
	sbs := criSandboxes(t, rs, string(pod.UID))
	if len(sbs) == 0 {
		t.Fatal("the pod has no sandbox to remove: the test proves nothing")
	}
	for _, sb := range sbs {
		crictl(t, "rmp", "-f", sb.Id)
	}
	t.Logf("removed %d sandbox(es) of the deleted pod while no agent ran", len(sbs))

	started := time.Now()
	startAgent(t)
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	waitPodGone(t, ns, pod.Name, grace+30*time.Second)
	if took := time.Since(started); took > grace+10*time.Second {
		t.Errorf("the pod was gone %s after the agent started, want within its grace period %s plus a few seconds", took.Round(100*time.Millisecond), grace)
	} else {
		t.Logf("the pod was gone %s after the agent started", took.Round(100*time.Millisecond))
	}
	podDir := filepath.Join(rootDir(), "pods", string(pod.UID))
	waitFor(t, "nothing of the pod left in the runtime or mounted", 30*time.Second, func(context.Context) (bool, error) {
		return len(criSandboxes(t, rs, string(pod.UID))) == 0 && len(criContainers(t, rs, string(pod.UID), "")) == 0 &&
			len(mountsUnder(t, podDir)) == 0, nil
	})
}

// TestOnceSandboxRemoved removes a running pod's sandbox from the runtime
// (crictl rmp -f) with the agent running: the regular containers come back
// in a new sandbox; the debug container that ran in the old one does not run
// again and stays Terminated.
func TestOnceSandboxRemoved(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pod := runningSharedApp(t, ns, "resandboxed")
	rs := criClient(t)
	addEphemeral(t, pod, countingDebugger("dbg", 0))
	before := waitPod(t, ns, pod.Name, "dbg terminated", 60*time.Second, ephemeralTerminated("dbg"))
	if n := runs(t, pod, "dbg"); n != 1 {
		t.Fatalf("dbg ran %d times before the sandbox was removed, want 1", n)
	}
	appID := containerStatus(before.Status.ContainerStatuses, "app").ContainerID
	old := map[string]bool{}
	for _, sb := range criSandboxes(t, rs, string(pod.UID)) {
		old[sb.Id] = true
		crictl(t, "rmp", "-f", sb.Id)
	}
	removedAt := time.Now()

	waitPod(t, ns, pod.Name, "the app running again in a new container", 60*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.ContainerStatuses, "app")
		return s != nil && s.State.Running != nil && s.ContainerID != appID && podReady(p)
	})
	t.Logf("the app ran again %s after the sandbox was removed", time.Since(removedAt).Round(100*time.Millisecond))
	var fresh []*runtimeapi.PodSandbox
	for _, sb := range criSandboxes(t, rs, string(pod.UID)) {
		if !old[sb.Id] && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			fresh = append(fresh, sb)
		}
	}
	if len(fresh) != 1 {
		t.Errorf("%d new ready sandboxes, want 1", len(fresh))
	}

	// The debugger stays done: 15s of syncs in the new sandbox.
	deadline := time.Now().Add(15 * time.Second)
	var notTerminated []string
	for time.Now().Before(deadline) {
		if cs := criContainers(t, rs, string(pod.UID), "dbg"); len(cs) != 0 {
			t.Fatalf("dbg was created again in the new sandbox: the runtime holds %s; it ran %d times", describeCRI(cs), runs(t, pod, "dbg"))
		}
		if s := ephemeralStatus(getPod(t, ns, pod.Name), "dbg"); s == nil || s.State.Terminated == nil {
			notTerminated = append(notTerminated, fmt.Sprintf("%+v", s))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(notTerminated) > 0 {
		t.Errorf("dbg's status left Terminated: %s", strings.Join(notTerminated, "; "))
	}
	got := getPod(t, ns, pod.Name)
	if n := runs(t, pod, "dbg"); n != 1 {
		t.Errorf("dbg ran %d times, want exactly 1", n)
	}
	if s := ephemeralStatus(got, "dbg"); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
		t.Errorf("dbg status = %+v, want Terminated with its exit 0 kept", s)
	}
	n, evs := ephemeralEvents(t, got, "dbg", "ContainerLost")
	if n > 1 {
		t.Errorf("%d ContainerLost Events for dbg %s, want at most one", n, describeEvents(evs))
	}
	t.Logf("ContainerLost Events for dbg: %s", describeEvents(evs))
}

// TestOnceDebugPodThatDoesNotStart debugs pods whose own containers do not
// run: the debug container runs all the same. With --target at an app
// container that does not run yet, it waits (a Waiting reason) and starts
// as soon as the target runs.
func TestOnceDebugPodThatDoesNotStart(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)

	sleeper := v1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}
	crasher := v1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "exit 1"}}
	waitingIn := func(statuses func(*v1.Pod) []v1.ContainerStatus, name, reason string) func(*v1.Pod) bool {
		return func(p *v1.Pod) bool {
			s := containerStatus(statuses(p), name)
			return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == reason
		}
	}
	initStatuses := func(p *v1.Pod) []v1.ContainerStatus { return p.Status.InitContainerStatuses }
	appStatuses := func(p *v1.Pod) []v1.ContainerStatus { return p.Status.ContainerStatuses }

	for _, tc := range []struct {
		name  string
		init  []v1.Container
		app   v1.Container
		stuck func(*v1.Pod) bool
		what  string
	}{
		{"init-image-missing", []v1.Container{{Name: "init", Image: "localhost/does-not-exist:none", ImagePullPolicy: v1.PullNever, Command: []string{"true"}}},
			sleeper, waitingIn(initStatuses, "init", "ErrImageNeverPull"), "Init:ErrImageNeverPull"},
		{"init-crashloop", []v1.Container{{Name: "init", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", "exit 1"}}},
			sleeper, waitingIn(initStatuses, "init", "CrashLoopBackOff"), "Init:CrashLoopBackOff"},
		{"app-crashloop", nil, crasher, waitingIn(appStatuses, "app", "CrashLoopBackOff"), "CrashLoopBackOff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			createPod(t, &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: ns},
				Spec: v1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					InitContainers:                tc.init,
					Containers:                    []v1.Container{tc.app},
				},
			})
			waitPod(t, ns, tc.name, tc.what, 90*time.Second, tc.stuck)
			mustKubectl(t, "-n", ns, "debug", tc.name, "--image="+busyboxImage, "--image-pull-policy=Never",
				"--container=dbg", "--", "sh", "-c", "echo debugged-$((40+2)); sleep 5")
			got := waitPod(t, ns, tc.name, "dbg running or terminated", 60*time.Second, func(p *v1.Pod) bool {
				s := ephemeralStatus(p, "dbg")
				return s != nil && (s.State.Running != nil || s.State.Terminated != nil)
			})
			if s := ephemeralStatus(got, "dbg"); s.State.Terminated != nil && s.State.Terminated.ExitCode != 0 {
				t.Errorf("dbg in a pod in %s: %+v, want Running or Terminated exit 0", tc.what, s.State.Terminated)
			}
			waitFor(t, "the debug command's output in kubectl logs", 20*time.Second, func(context.Context) (bool, error) {
				out, err := kubectl(t, "-n", ns, "logs", tc.name, "-c", "dbg")
				if err != nil || !strings.Contains(out, "debugged-42") {
					return false, fmt.Errorf("kubectl logs: %v: %q", err, out)
				}
				return true, nil
			})
			if !tc.stuck(getPod(t, ns, tc.name)) {
				t.Logf("note: the pod left %s meanwhile", tc.what)
			}
		})
	}

	t.Run("target-not-running", func(t *testing.T) {
		t.Parallel()
		const name = "target-later"
		createPod(t, &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				InitContainers:                []v1.Container{{Name: "init", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "15"}}},
				Containers:                    []v1.Container{{Name: "app", Image: distrolessImage, ImagePullPolicy: v1.PullNever}},
			},
		})
		waitPod(t, ns, name, "init running", 60*time.Second, func(p *v1.Pod) bool {
			s := containerStatus(p.Status.InitContainerStatuses, "init")
			return s != nil && s.State.Running != nil
		})
		mustKubectl(t, "-n", ns, "debug", name, "--image="+busyboxImage, "--image-pull-policy=Never",
			"--target=app", "--container=dbg", "--", "sh", "-c", "ps -o args; sleep 2")
		waiting := waitPod(t, ns, name, "dbg waiting for its target", 30*time.Second, func(p *v1.Pod) bool {
			s := ephemeralStatus(p, "dbg")
			return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason != ""
		})
		if app := containerStatus(waiting.Status.ContainerStatuses, "app"); app != nil && app.State.Running != nil {
			t.Fatalf("the app already ran when dbg was seen waiting: the test proves nothing")
		}
		w := ephemeralStatus(waiting, "dbg").State.Waiting
		t.Logf("dbg waits for its target: %s: %s", w.Reason, w.Message)

		got := waitPod(t, ns, name, "app running and dbg started", 60*time.Second, func(p *v1.Pod) bool {
			app := containerStatus(p.Status.ContainerStatuses, "app")
			s := ephemeralStatus(p, "dbg")
			return app != nil && app.State.Running != nil && s != nil && (s.State.Running != nil || s.State.Terminated != nil)
		})
		appStart := containerStatus(got.Status.ContainerStatuses, "app").State.Running.StartedAt.Time
		s := ephemeralStatus(got, "dbg")
		var dbgStart time.Time
		if s.State.Running != nil {
			dbgStart = s.State.Running.StartedAt.Time
		} else {
			dbgStart = s.State.Terminated.StartedAt.Time
			if s.State.Terminated.ExitCode != 0 {
				t.Errorf("dbg: %+v, want exit 0", s.State.Terminated)
			}
		}
		if d := dbgStart.Sub(appStart); d > 5*time.Second {
			t.Errorf("dbg started %s after its target, want as soon as the target runs", d)
		} else {
			t.Logf("dbg started %s after its target", d)
		}
		waitPod(t, ns, name, "dbg terminated", 60*time.Second, ephemeralTerminated("dbg"))
		if logs := mustKubectl(t, "-n", ns, "logs", name, "-c", "dbg"); !strings.Contains(logs, "/app") {
			t.Errorf("dbg did not see its target:\n%s", logs)
		}
	})
}

// stallingRegistry listens on a free loopback port, accepts connections
// and never answers: a registry that hangs every pull. It returns the
// address and the count of connections it accepted.
func stallingRegistry(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		accepted atomic.Int32
		mu       sync.Mutex
		conns    []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			// Read what the client sends, so its writes never block;
			// never write a byte back.
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), &accepted
}

// TestOnceImagePullStalls gives a pod an app image whose registry never
// answers: its debug container starts while the pull hangs, the app shows
// Waiting (Pulling), another pod on the node is unaffected, and the pod's
// deletion completes within its grace period.
func TestOnceImagePullStalls(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	rs := criClient(t)
	addr, accepted := stallingRegistry(t)

	const name = "stalled"
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers:                    []v1.Container{{Name: "app", Image: addr + "/stall/app:1", ImagePullPolicy: v1.PullAlways}},
		},
	})
	waitFor(t, "the pull to reach the stalling registry and the pod's sandbox", 60*time.Second, func(context.Context) (bool, error) {
		return accepted.Load() > 0 && len(criSandboxes(t, rs, string(pod.UID))) > 0, nil
	})
	pullStarted := time.Now()

	addEphemeral(t, pod, debugContainer("dbg", "", "sh", "-c", "echo debugged; sleep 3600"))
	waitPod(t, ns, name, "dbg running while the app's pull hangs", 30*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "dbg")
		return s != nil && s.State.Running != nil
	})
	t.Logf("dbg runs %s into the hanging pull", time.Since(pullStarted).Round(100*time.Millisecond))

	got := waitPod(t, ns, name, "app Waiting (Pulling or ContainerCreating)", 30*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.ContainerStatuses, "app")
		return s != nil && s.State.Waiting != nil && (s.State.Waiting.Reason == "Pulling" || s.State.Waiting.Reason == "ContainerCreating")
	})
	if w := containerStatus(got.Status.ContainerStatuses, "app").State.Waiting; w.Reason != "Pulling" {
		// Give the agent a moment: the status may lag the pull's start.
		time.Sleep(3 * time.Second)
		if s := containerStatus(getPod(t, ns, name).Status.ContainerStatuses, "app"); s.State.Waiting == nil || s.State.Waiting.Reason != "Pulling" {
			t.Logf("NOTE: the app shows %+v during the hanging pull, not Waiting reason Pulling", s.State)
		}
	} else {
		t.Logf("the app shows Waiting %s: %s", w.Reason, w.Message)
	}

	other := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bystander", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}},
		},
	})
	waitPod(t, ns, other.Name, "another pod Ready during the hanging pull", 30*time.Second, podReady)

	if s := containerStatus(getPod(t, ns, name).Status.ContainerStatuses, "app"); s == nil || s.State.Waiting == nil {
		t.Errorf("app status = %+v, want still Waiting on its pull", s)
	}
	deleted := time.Now()
	if err := client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, ns, name, 30*time.Second)
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if took := time.Since(deleted); took > grace+5*time.Second {
		t.Errorf("deletion of the pod with a hanging pull took %s, want within its grace period %s plus a few seconds", took.Round(100*time.Millisecond), grace)
	} else {
		t.Logf("deletion of the pod with a hanging pull took %s", took.Round(100*time.Millisecond))
	}
	t.Logf("the stalling registry accepted %d connection(s)", accepted.Load())
	cleanupPods(t, ns)
}

// TestOnceStartError debugs with an image that has no shell: the runtime
// refuses the start, and the debug container is Terminated with the
// runtime's reason (StartError, exit 128, its message); it is never tried
// again.
func TestOnceStartError(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pod := runningApp(t, ns, "noshell")
	rs := criClient(t)

	mustKubectl(t, "-n", ns, "debug", pod.Name, "--image="+distrolessImage, "--image-pull-policy=Never", "--container=noshell", "--", "sh")
	got := waitPod(t, ns, pod.Name, "noshell terminated", 60*time.Second, ephemeralTerminated("noshell"))
	term := ephemeralStatus(got, "noshell").State.Terminated
	if term.Reason != "StartError" || term.ExitCode != 128 || !strings.Contains(term.Message, `"sh"`) ||
		!(strings.Contains(term.Message, "executable file not found") || strings.Contains(term.Message, "no such file or directory")) {
		t.Errorf("noshell: Terminated %+v, want reason StartError, exit 128 and the runtime's message about sh", term)
	}
	firstSeen := time.Now()
	assertOneEphemeralCRIContainer(t, got, "noshell")

	for time.Since(firstSeen) < 30*time.Second {
		if cs := criContainers(t, rs, string(pod.UID), "noshell"); len(cs) != 1 {
			t.Fatalf("%s after the start error: the runtime holds %s, want exactly one container", time.Since(firstSeen).Round(time.Second), describeCRI(cs))
		}
		if s := ephemeralStatus(getPod(t, ns, pod.Name), "noshell"); s.State.Terminated == nil || s.State.Terminated.Reason != term.Reason {
			t.Fatalf("noshell's status changed to %+v", s.State)
		}
		time.Sleep(time.Second)
	}
}
