//go:build e2e

package e2enode

// Bad input through the real API server, end to end: what the API server
// accepts but the node cannot run gives a clear Waiting reason (the
// kubelet's) with a useful message and a Warning Event, never a crash or a
// hang of the agent, which meanwhile serves every other pod. What the API
// server refuses never reaches a node through it: those cases are unit
// tests (pkg/kuberuntime/badinput_test.go).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// waitEphemeralEvent waits for a Warning Event of that reason about the
// pod's ephemeral container name whose message contains part.
func waitEphemeralEvent(t *testing.T, pod *v1.Pod, name, reason, part string) v1.Event {
	t.Helper()
	var found v1.Event
	waitFor(t, fmt.Sprintf("a Warning %s Event about %s containing %q", reason, name, part), 30*time.Second, func(context.Context) (bool, error) {
		_, evs := ephemeralEvents(t, pod, name, reason)
		for _, e := range evs {
			if e.Type == v1.EventTypeWarning && strings.Contains(e.Message, part) {
				found = e
				return true, nil
			}
		}
		return false, fmt.Errorf("events: %s", describeEvents(evs))
	})
	return found
}

// waitEphemeralFailure waits until the pod's ephemeral container name
// waits with reason and a message containing part, checks that the runtime
// holds no container of it and that a Warning Failed Event says
// "Error: " and the message, and returns the pod as seen.
func waitEphemeralFailure(t *testing.T, pod *v1.Pod, name, reason, part string) *v1.Pod {
	t.Helper()
	got := waitPod(t, pod.Namespace, pod.Name, name+" Waiting "+reason, 60*time.Second, ephemeralWaiting(name, reason))
	w := ephemeralStatus(got, name).State.Waiting
	if !strings.Contains(w.Message, part) {
		t.Errorf("%s: Waiting %s message %q, want it to contain %q", name, w.Reason, w.Message, part)
	}
	t.Logf("%s: Waiting %s: %s", name, w.Reason, w.Message)
	waitEphemeralEvent(t, pod, name, "Failed", "Error: ")
	if cs := criContainers(t, criClient(t), string(pod.UID), name); len(cs) != 0 {
		t.Errorf("%s: the runtime holds %s, want no container", name, describeCRI(cs))
	}
	return got
}

// TestBadInput runs every bad-input case the API server accepts against one
// agent in one namespace, side by side with a healthy pod: the healthy
// pod's debuggers, one added while the cases run and one at the end, each
// run exactly once, and the agent is alive and healthy at the end.
func TestBadInput(t *testing.T) {
	a := startAgent(t)
	started := time.Now()
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	healthy := runningSharedApp(t, ns, "healthy")
	rs := criClient(t)

	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"healthy-pod-meanwhile", func(t *testing.T) {
			// Added while the other cases fail: the agent's workers are
			// busy with bad pods, this one still starts at once.
			time.Sleep(10 * time.Second)
			addEphemeral(t, healthy, countingDebugger("meanwhile", 0))
			waitPod(t, ns, healthy.Name, "meanwhile terminated", 30*time.Second, ephemeralTerminated("meanwhile"))
			if n := runs(t, healthy, "meanwhile"); n != 1 {
				t.Errorf("meanwhile ran %d times, want 1", n)
			}
		}},
		{"image", func(t *testing.T) {
			pod := runningApp(t, ns, "image")
			malformed := debugContainer("malformed", "app", "true")
			malformed.Image = "UPPER/Case::bad"
			missing := debugContainer("missing", "app", "true")
			missing.Image = "localhost/does-not-exist:none"
			missing.ImagePullPolicy = v1.PullIfNotPresent
			addEphemeral(t, pod, malformed, missing)
			waitEphemeralFailure(t, pod, "malformed", "InvalidImageName", `Failed to apply default image tag "UPPER/Case::bad"`)
			waitEphemeralEvent(t, pod, "malformed", "InspectFailed", `Failed to apply default image tag "UPPER/Case::bad"`)
			waitEphemeralEvent(t, pod, "malformed", "Failed", "Error: InvalidImageName")
			waitEphemeralFailure(t, pod, "missing", "ImagePullBackOff", "localhost/does-not-exist:none")
			waitEphemeralEvent(t, pod, "missing", "Failed", "Error: ErrImagePull")
		}},
		{"target-finished-init-container", func(t *testing.T) {
			pod := runningApp(t, ns, "finished-init", func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "setup", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"true"}}}
			})
			addEphemeral(t, pod, debugContainer("dbg", "setup", "ps"))
			waitEphemeralFailure(t, pod, "dbg", "CreateContainerError", "is not running")
		}},
		{"target-not-running", func(t *testing.T) {
			pod := exitedAppPod(t, ns, "exited-app")
			addEphemeral(t, pod, debugContainer("dbg", "app", "ps"))
			waitEphemeralFailure(t, pod, "dbg", "CreateContainerError", "is not running")
		}},
		{"target-removed-from-runtime", func(t *testing.T) {
			pod := exitedAppPod(t, ns, "removed-app")
			for _, c := range criContainers(t, rs, string(pod.UID), "app") {
				crictl(t, "rm", c.Id)
			}
			addEphemeral(t, pod, debugContainer("dbg", "app", "ps"))
			// The agent re-creates the app that ran (as the kubelet does for
			// a container it has no trace of), which exits at once: the
			// debugger finds no target, a target that no longer runs, or
			// one that ended between its create and its start.
			got := waitPod(t, ns, pod.Name, "dbg settled", 60*time.Second, ephemeralSettled("dbg"))
			s := ephemeralStatus(got, "dbg")
			t.Logf("dbg targeting a removed container: %+v; app in the runtime: %s", s.State, describeCRI(criContainers(t, rs, string(pod.UID), "app")))
			switch {
			case s.State.Waiting != nil:
				w := s.State.Waiting
				if !(w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "unable to find target container app")) &&
					!(w.Reason == "CreateContainerError" && strings.Contains(w.Message, "is not running")) {
					t.Errorf("dbg: Waiting %s %q, want the target missing or not running", w.Reason, w.Message)
				}
				waitEphemeralEvent(t, pod, "dbg", "Failed", "Error: ")
			case s.State.Terminated != nil:
				if term := s.State.Terminated; term.Reason != "StartError" || term.ExitCode != 128 || !strings.Contains(term.Message, "ns/pid") {
					t.Errorf("dbg: Terminated %+v, want StartError 128 for the target's PID namespace", term)
				}
				waitEphemeralEvent(t, pod, "dbg", "Failed", "ns/pid")
			default:
				t.Errorf("dbg runs, though its target exited: %+v", s.State)
			}
			if cs := criContainers(t, rs, string(pod.UID), "dbg"); len(cs) > 1 {
				t.Errorf("dbg: the runtime holds %s, want at most one container", describeCRI(cs))
			}
		}},
		{"security-context", func(t *testing.T) {
			pod := runningApp(t, ns, "security")
			seccomp := debugContainer("seccomp", "app", "true")
			seccomp.SecurityContext = &v1.SecurityContext{SeccompProfile: &v1.SeccompProfile{
				Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("does-not-exist.json")}}
			apparmor := debugContainer("apparmor", "app", "true")
			apparmor.SecurityContext = &v1.SecurityContext{AppArmorProfile: &v1.AppArmorProfile{
				Type: v1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptr.To("does-not-exist")}}
			addEphemeral(t, pod, seccomp, apparmor)
			waitEphemeralFailure(t, pod, "seccomp", "CreateContainerError", "does-not-exist.json")
			waitEphemeralFailure(t, pod, "apparmor", "CreateContainerError", "apparmor")
		}},
		{"big-env", func(t *testing.T) {
			pod := runningApp(t, ns, "big-env")
			// Under the kernel's limit of one environment string
			// (MAX_ARG_STRLEN, 128 KiB): it runs and sees the value.
			fits := debugContainer("fits", "", "sh", "-c", `echo "len=${#BIG}"`)
			fits.Env = []v1.EnvVar{{Name: "BIG", Value: strings.Repeat("x", 100<<10)}}
			big := debugContainer("mib", "", "sh", "-c", `echo "len=${#BIG}"`)
			big.Env = []v1.EnvVar{{Name: "BIG", Value: strings.Repeat("x", 1<<20)}}
			addEphemeral(t, pod, fits)
			addEphemeral(t, pod, big)
			got := waitPod(t, ns, pod.Name, "both terminated", 60*time.Second, func(p *v1.Pod) bool {
				return ephemeralTerminated("fits")(p) && ephemeralTerminated("mib")(p)
			})
			if s := ephemeralStatus(got, "fits").State.Terminated; s.ExitCode != 0 {
				t.Errorf("fits: %+v, want exit 0", s)
			}
			if logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "fits"); !strings.Contains(logs, fmt.Sprintf("len=%d", 100<<10)) {
				t.Errorf("fits saw %q, want the whole value", logs)
			}
			term := ephemeralStatus(got, "mib").State.Terminated
			logs, _ := kubectl(t, "-n", ns, "logs", pod.Name, "-c", "mib")
			t.Logf("mib: Terminated %d %s %q; logs %q", term.ExitCode, term.Reason, term.Message, logs)
			// The kernel refuses the exec (E2BIG) after the runtime
			// started the container: it ends as a process that failed,
			// exit 1, and runc's message is its log, as with the kubelet.
			if term.ExitCode != 1 || term.Reason != "Error" || !strings.Contains(logs, "argument list too long") {
				t.Errorf("mib: Terminated %+v, logs %q: want exit 1 Error and the failed exec in its log", term, logs)
			}
			if cs := criContainers(t, rs, string(pod.UID), "mib"); len(cs) != 1 {
				t.Errorf("mib: the runtime holds %s, want exactly one container", describeCRI(cs))
			}
		}},
		{"100-ephemeral-containers", func(t *testing.T) {
			pod := runningSharedApp(t, ns, "hundred")
			var names []string
			for batch := range 10 {
				var ecs []v1.EphemeralContainer
				for i := range 10 {
					name := fmt.Sprintf("d%02d", batch*10+i)
					names = append(names, name)
					ecs = append(ecs, countingDebugger(name, 0))
				}
				addEphemeral(t, pod, ecs...)
			}
			added := time.Now()
			got := waitPod(t, ns, pod.Name, "100 debuggers terminated", 120*time.Second, func(p *v1.Pod) bool {
				for _, name := range names {
					if !ephemeralTerminated(name)(p) {
						return false
					}
				}
				return true
			})
			t.Logf("100 debuggers terminated %s after they were added", time.Since(added).Round(100*time.Millisecond))
			if n := len(got.Status.EphemeralContainerStatuses); n != 100 {
				t.Errorf("%d ephemeral container statuses, want 100", n)
			}
			perName := map[string]int{}
			for _, c := range criContainers(t, rs, string(pod.UID), "") {
				perName[c.Metadata.Name]++
			}
			for _, name := range names {
				if term := ephemeralStatus(got, name).State.Terminated; term.ExitCode != 0 {
					t.Errorf("%s: %+v, want exit 0", name, term)
				}
				if n := runs(t, pod, name); n != 1 {
					t.Errorf("%s ran %d times, want 1", name, n)
				}
				if perName[name] != 1 {
					t.Errorf("%s: %d CRI containers, want 1", name, perName[name])
				}
			}
		}},
		{"subpath-symlink-out-of-volume", func(t *testing.T) {
			// The API forbids subPath on ephemeral containers: the pod's
			// own containers mount subPaths that its init container made
			// symlinks out of the volume (one absolute, one relative).
			// The agent's mounts of both kinds are one code path,
			// unit-tested in pkg/volume (a symlink swapped in later).
			p := sharedAppPod(ns, "subpath")
			p.Spec.InitContainers = []v1.Container{{Name: "plant", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command:      []string{"sh", "-c", "ln -s /etc /shared/abs && ln -s ../../../../../../../.. /shared/rel"},
				VolumeMounts: []v1.VolumeMount{{Name: sharedVolume, MountPath: "/shared"}}}}
			for _, link := range []string{"abs", "rel"} {
				p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: link, Image: busyboxImage, ImagePullPolicy: v1.PullNever,
					Command:      []string{"ls", "/escaped"},
					VolumeMounts: []v1.VolumeMount{{Name: sharedVolume, MountPath: "/escaped", SubPath: link}}})
			}
			pod := createPod(t, p)
			for _, link := range []string{"abs", "rel"} {
				msg := fmt.Sprintf("failed to prepare subPath for volumeMount %q of container %q", sharedVolume, link)
				got := waitPod(t, ns, pod.Name, link+" Waiting CreateContainerConfigError", 60*time.Second, func(p *v1.Pod) bool {
					s := containerStatus(p.Status.ContainerStatuses, link)
					return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == "CreateContainerConfigError"
				})
				if w := containerStatus(got.Status.ContainerStatuses, link).State.Waiting; w.Message != msg {
					t.Errorf("%s: Waiting message %q, want %q", link, w.Message, msg)
				}
				waitFor(t, "a Failed Event about "+link, 30*time.Second, func(context.Context) (bool, error) {
					return hasEvent(t, pod, "Failed", "Error: "+msg), nil
				})
				if cs := criContainers(t, rs, string(pod.UID), link); len(cs) != 0 {
					t.Errorf("%s: the runtime holds %s, want no container", link, describeCRI(cs))
				}
			}
			// Nothing outside the volume is mounted for them.
			if mps := mountsUnder(t, filepath.Join(rootDir(), "pods", string(pod.UID), "volume-subpaths")); len(mps) != 0 {
				t.Errorf("subPath mounts for links out of the volume: %q", mps)
			}
			// The pod's other containers run, and so does a debugger.
			waitPod(t, ns, pod.Name, "app running", 30*time.Second, func(p *v1.Pod) bool {
				s := containerStatus(p.Status.ContainerStatuses, "app")
				return s != nil && s.State.Running != nil
			})
			addEphemeral(t, pod, countingDebugger("dbg", 0))
			waitPod(t, ns, pod.Name, "dbg terminated", 30*time.Second, ephemeralTerminated("dbg"))
			if n := runs(t, pod, "dbg"); n != 1 {
				t.Errorf("dbg ran %d times, want 1", n)
			}
		}},
		{"long-names", func(t *testing.T) {
			// 63-character container names (the API's limit) in a pod
			// of a 63-character name: they run.
			ctr := "c" + strings.Repeat("x", 61) + "c"
			dbg := "d" + strings.Repeat("y", 61) + "d"
			pod := runningApp(t, ns, "p"+strings.Repeat("z", 61)+"p", func(p *v1.Pod) { p.Spec.Containers[0].Name = ctr })
			addEphemeral(t, pod, debugContainer(dbg, ctr, "ps", "-o", "args"))
			waitPod(t, ns, pod.Name, "the debugger terminated", 60*time.Second, ephemeralTerminated(dbg))
			if logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", dbg); !strings.Contains(logs, "/app") {
				t.Errorf("the debugger with a 63-character name did not see its target:\n%s", logs)
			}
			assertOneEphemeralCRIContainer(t, getPod(t, ns, pod.Name), dbg)
		}},
		{"253-character-pod-name", func(t *testing.T) {
			// Valid for the API, but namespace_name_uid is longer than a
			// file name may be: the pod's log directory cannot exist (as
			// with the kubelet, which names it the same way).
			longPod(t, ns, strings.Repeat("l", 253))
		}},
		{"unicode", func(t *testing.T) {
			const note = "héllo wörld ✓ 🐛 日本語"
			pod := runningApp(t, ns, "unicode", func(p *v1.Pod) { p.Annotations = map[string]string{"note": note} })
			ec := debugContainer("dbg", "app", "sh", "-c", `echo "env=$GREETING"; echo "ann=$NOTE"; echo "arg=$1"`, "sh", "$(GREETING)-ärg")
			ec.Env = []v1.EnvVar{
				{Name: "GREETING", Value: "grüße-🐛"},
				{Name: "NOTE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations['note']"}}},
			}
			addEphemeral(t, pod, ec)
			got := waitPod(t, ns, pod.Name, "dbg terminated", 60*time.Second, ephemeralTerminated("dbg"))
			if term := ephemeralStatus(got, "dbg").State.Terminated; term.ExitCode != 0 {
				t.Errorf("dbg: %+v, want exit 0", term)
			}
			logs := mustKubectl(t, "-n", ns, "logs", pod.Name, "-c", "dbg")
			for _, want := range []string{"env=grüße-🐛", "ann=" + note, "arg=grüße-🐛-ärg"} {
				if !strings.Contains(logs, want) {
					t.Errorf("dbg's output lacks %q:\n%s", want, logs)
				}
			}
		}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t)
			})
		}
	})

	// The agent served the healthy pod all along, and still does.
	addEphemeral(t, healthy, countingDebugger("after", 0))
	got := waitPod(t, ns, healthy.Name, "after terminated", 30*time.Second, ephemeralTerminated("after"))
	for _, name := range []string{"meanwhile", "after"} {
		if n := runs(t, healthy, name); n != 1 {
			t.Errorf("healthy pod's %s ran %d times, want 1", name, n)
		}
		if s := ephemeralStatus(got, name); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("healthy pod's %s: %+v, want Terminated exit 0", name, s)
		}
	}
	if app := containerStatus(got.Status.ContainerStatuses, "app"); app == nil || app.State.Running == nil || app.RestartCount != 0 {
		t.Errorf("healthy pod's app: %+v, want running, never restarted", app)
	}
	// Failed starts are retried with backoff, never in a loop: a status
	// that each failure rewrote (the runtime's message names a new
	// container ID each time) once synced its pod again at once, ten
	// times a second, starving the other pods' starts.
	const failing, maxAttempts = 5, 30
	attempts := metricSum(agentMetrics(t), "ephemeral_container_start_errors_total", "reason=CreateContainerError")
	t.Logf("%.0f CreateContainerError attempts in %s", attempts, time.Since(started).Round(time.Second))
	if attempts > failing*maxAttempts {
		t.Errorf("%.0f CreateContainerError attempts for %d debuggers, want at most %d each: the retries loop", attempts, failing, maxAttempts)
	}
	assertAgentAlive(t, a)
	cleanupPods(t, ns)
	assertAgentAlive(t, a)
}

// exitedAppPod creates a pod (restartPolicy Never) whose app container
// exits at once while another keeps it running, and waits for the app's
// exit.
func exitedAppPod(t *testing.T, ns, name string) *v1.Pod {
	t.Helper()
	createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			RestartPolicy:                 v1.RestartPolicyNever,
			Containers: []v1.Container{
				{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"true"}},
				{Name: "keep", Image: distrolessImage, ImagePullPolicy: v1.PullNever},
			},
		},
	})
	return waitPod(t, ns, name, "app exited, keep running", 90*time.Second, func(p *v1.Pod) bool {
		app, keep := containerStatus(p.Status.ContainerStatuses, "app"), containerStatus(p.Status.ContainerStatuses, "keep")
		return app != nil && app.State.Terminated != nil && keep != nil && keep.State.Running != nil
	})
}

// ephemeralSettled holds once the pod's ephemeral container name runs, has
// ended, or waits with a reason other than those of a start in progress.
func ephemeralSettled(name string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		s := ephemeralStatus(p, name)
		if s == nil {
			return false
		}
		if w := s.State.Waiting; w != nil {
			return w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "Pulling"
		}
		return true
	}
}

// longPod creates a pod with a name too long for its log directory: it gets
// no sandbox, its container waits in ContainerCreating (as with the
// kubelet), and a FailedCreatePodSandBox Event says why.
func longPod(t *testing.T, ns, name string) {
	t.Helper()
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "app", Image: distrolessImage, ImagePullPolicy: v1.PullNever}},
		},
	})
	got := waitPod(t, ns, name, "app Waiting ContainerCreating", 60*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.ContainerStatuses, "app")
		return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == "ContainerCreating"
	})
	waitFor(t, "a FailedCreatePodSandBox Event about the log directory", 30*time.Second, func(context.Context) (bool, error) {
		return hasEventContaining(t, pod, "FailedCreatePodSandBox", "create pod log directory"), nil
	})
	if !hasEventContaining(t, pod, "FailedCreatePodSandBox", "file name too long") {
		t.Errorf("the FailedCreatePodSandBox Event does not say the file name is too long")
	}
	// Still so a few syncs later: retried, never half-made.
	time.Sleep(5 * time.Second)
	evs, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	t.Logf("Events of the pod with a %d-character name: %s", len(name), describeEvents(evs.Items))
	if sbs := criSandboxes(t, criClient(t), string(got.UID)); len(sbs) != 0 {
		t.Errorf("%d sandboxes for a pod whose log directory cannot exist", len(sbs))
	}
	if got.Status.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending", got.Status.Phase)
	}
}

// assertAgentAlive fails the test if the agent's process has exited or it
// does not serve healthz, or its log shows a panic.
func assertAgentAlive(t *testing.T, a *agent) {
	t.Helper()
	select {
	case <-a.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		t.Fatalf("the agent exited: %v", a.exitErr)
	default:
	}
	if !agentServes() {
		t.Errorf("the agent does not serve healthz")
	}
	// A panic a worker recovered from (runtime.HandleCrash) leaves the
	// process alive but the pod unserved.
	if b, err := os.ReadFile(a.logPath); err == nil && (strings.Contains(string(b), "panic:") || strings.Contains(string(b), "Observed a panic")) {
		t.Errorf("the agent's log shows a panic")
	}
}
