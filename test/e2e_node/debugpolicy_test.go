//go:build e2e

package e2enode

// Debug control end to end (issue 14): the node's debug policy
// (--debug-policy-config) allows and denies debug containers rule by rule,
// caps their resources in the runtime, ends them on its time limits, and
// the pod's stop annotation ends them on request. A denied or stopped debug
// container says why in its status and in an Event, and is never run (or
// run again).
//
// One agent and one policy file serve most cases: each rule applies to the
// namespaces carrying its value of policyLabel, and the cases run in
// parallel, each in its namespace's pod.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// policyLabel on a test namespace selects the policy rule of that name.
const policyLabel = "e2e.ephemeral-agent.io/debug-policy"

// missingImage is in no store: a debug container of it waits
// (ErrImageNeverPull with pull policy Never).
const missingImage = "localhost/does-not-exist:test"

// policyHeader starts every policy file.
const policyHeader = "apiVersion: debug.ephemeral-agent.io/v1alpha1\nkind: DebugPolicy\n"

// testPolicy has one rule per namespace kind of TestDebugPolicy; a
// namespace without policyLabel matches none, and everything is allowed
// there, with the policy's defaults as caps.
const testPolicy = policyHeader + `defaults:
  resources: {pids: 100}
rules:
- name: restricted
  namespaceSelector: {matchLabels: {` + policyLabel + `: restricted}}
  images: [localhost/busybox]
  allowedCapabilities: [NET_ADMIN]
  allowTarget: false
- name: digest
  namespaceSelector: {matchLabels: {` + policyLabel + `: digest}}
  requireDigest: true
- name: nonroot
  namespaceSelector: {matchLabels: {` + policyLabel + `: nonroot}}
  runAsNonRoot: true
  runAsUser: {min: 1000, max: 2000}
- name: privileged
  namespaceSelector: {matchLabels: {` + policyLabel + `: privileged}}
  allowPrivileged: true
- name: caps
  namespaceSelector: {matchLabels: {` + policyLabel + `: caps}}
  resources: {cpu: 200m, memory: 64Mi, pids: 64}
- name: deadline
  namespaceSelector: {matchLabels: {` + policyLabel + `: deadline}}
  maxDuration: 5s
`

// writePolicy replaces the policy file at path at once (a rename), so the
// agent's reload never reads half a file.
func writePolicy(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// policyNamespace is onceNamespace labelled policyLabel=value ("" for no
// label).
func policyNamespace(t *testing.T, value string) string {
	t.Helper()
	ns := onceNamespace(t)
	if value == "" {
		return ns
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, policyLabel, value)
	if _, err := client.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace %s: %v", ns, err)
	}
	return ns
}

// sleepingDebugger is a busybox debug container that runs for an hour.
func sleepingDebugger(name string) v1.EphemeralContainer {
	return debugContainer(name, "", "sleep", "3600")
}

// waitEphemeralTerminated waits until debug container name of pod is
// Terminated and returns its status.
func waitEphemeralTerminated(t *testing.T, pod *v1.Pod, name string, timeout time.Duration) *v1.ContainerStatus {
	t.Helper()
	got := waitPod(t, pod.Namespace, pod.Name, name+" terminated", timeout, ephemeralTerminated(name))
	return ephemeralStatus(got, name)
}

// waitEphemeralRunning waits until debug container name of pod runs.
func waitEphemeralRunning(t *testing.T, pod *v1.Pod, name string, timeout time.Duration) *v1.ContainerStatus {
	t.Helper()
	var last string
	var out *v1.ContainerStatus
	waitFor(t, fmt.Sprintf("debug container %s of %s/%s running", name, pod.Namespace, pod.Name), timeout, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		out = ephemeralStatus(p, name)
		if out == nil {
			return false, nil
		}
		last = describeState(out.State)
		if out.State.Terminated != nil {
			t.Fatalf("debug container %s of %s/%s ended instead of running: %s", name, pod.Namespace, pod.Name, last)
		}
		if out.State.Running == nil {
			return false, fmt.Errorf("state %s", last)
		}
		return true, nil
	})
	return out
}

// describeState says a container state in one line for a log.
func describeState(s v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated reason=%s exitCode=%d message=%q", s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message)
	case s.Waiting != nil:
		return fmt.Sprintf("Waiting reason=%s message=%q", s.Waiting.Reason, s.Waiting.Message)
	}
	return "none"
}

// waitDebugEvent waits for an Event of that type and reason about debug
// container name of pod (involvedObject.fieldPath naming it) and returns it.
func waitDebugEvent(t *testing.T, pod *v1.Pod, name, eventType, reason string) v1.Event {
	t.Helper()
	var found v1.Event
	var seen []v1.Event
	waitFor(t, fmt.Sprintf("a %s Event %s for debug container %s", eventType, reason, name), 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range evs.Items {
			if e.InvolvedObject.UID != pod.UID {
				continue
			}
			seen = append(seen, e)
			if e.Reason == reason && e.Type == eventType && e.InvolvedObject.FieldPath == "spec.ephemeralContainers{"+name+"}" {
				found = e
				return true, nil
			}
		}
		return false, fmt.Errorf("events of the pod: %s", describeEvents(seen))
	})
	return found
}

// assertEndedBy checks the final status of a debug container the agent
// ended with reason, and, for reasons of a container that ran, that the
// runtime held one instance of it, exited; ran false: none at all.
func assertEndedBy(t *testing.T, pod *v1.Pod, s *v1.ContainerStatus, reason string, ran bool) {
	t.Helper()
	term := s.State.Terminated
	if term == nil || term.Reason != reason {
		t.Errorf("debug container %s: %s, want Terminated reason %s", s.Name, describeState(s.State), reason)
		return
	}
	if !ran && (term.ExitCode != 128 || !term.StartedAt.IsZero()) {
		t.Errorf("debug container %s never ran: exitCode %d startedAt %v, want 128 and none", s.Name, term.ExitCode, term.StartedAt)
	}
	if s.Started != nil && *s.Started {
		t.Errorf("debug container %s: started is true after the agent ended it", s.Name)
	}
	cs := criContainers(t, criClient(t), string(pod.UID), s.Name)
	switch {
	case !ran && len(cs) != 0:
		t.Errorf("debug container %s never ran, yet the runtime holds %s", s.Name, describeCRI(cs))
	case ran && (len(cs) != 1 || cs[0].State != runtimeapi.ContainerState_CONTAINER_EXITED):
		t.Errorf("debug container %s: the runtime holds %s, want one exited container", s.Name, describeCRI(cs))
	}
}

// stayEnded checks for a few seconds that debug container name stays as
// ended (reason) and is not started again: a check that something does not
// happen needs some time to pass.
func stayEnded(t *testing.T, pod *v1.Pod, name, reason string, ran bool) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		p := getPod(t, pod.Namespace, pod.Name)
		s := ephemeralStatus(p, name)
		if s == nil || s.State.Terminated == nil || s.State.Terminated.Reason != reason {
			t.Errorf("debug container %s after it ended: %v, want it Terminated %s", name, s, reason)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	assertEndedBy(t, pod, ephemeralStatus(getPod(t, pod.Namespace, pod.Name), name), reason, ran)
}

// assertDenied waits for debug container name of pod to end denied by
// rule, and checks all the signs: status, Event, nothing in the runtime.
func assertDenied(t *testing.T, pod *v1.Pod, name, rule, why string) {
	t.Helper()
	s := waitEphemeralTerminated(t, pod, name, 60*time.Second)
	assertEndedBy(t, pod, s, debugapi.ReasonPolicyDenied, false)
	if term := s.State.Terminated; term != nil {
		if want := fmt.Sprintf("debug policy rule %q", rule); !strings.Contains(term.Message, want) || !strings.Contains(term.Message, why) {
			t.Errorf("denial message %q, want it to contain %q and %q", term.Message, want, why)
		}
	}
	e := waitDebugEvent(t, pod, name, v1.EventTypeWarning, debugapi.ReasonPolicyDenied)
	if !strings.Contains(e.Message, fmt.Sprintf("rule %q", rule)) {
		t.Errorf("denial Event message %q does not name rule %q", e.Message, rule)
	}
}

// assertAllowed waits for debug container name of pod to run, checks that
// the runtime's container names the rule that allowed it ("" none), and
// returns that container.
func assertAllowed(t *testing.T, pod *v1.Pod, name, rule string) *runtimeapi.Container {
	t.Helper()
	waitEphemeralRunning(t, pod, name, 60*time.Second)
	c := assertOneEphemeralCRIContainer(t, pod, name)
	if got := c.Annotations[debugapi.PolicyRuleAnnotation]; got != rule {
		t.Errorf("runtime annotation %s = %q, want %q", debugapi.PolicyRuleAnnotation, got, rule)
	}
	return c
}

// assertAppUntouched checks the pod's app still runs, never restarted.
func assertAppUntouched(t *testing.T, pod *v1.Pod) {
	t.Helper()
	p := getPod(t, pod.Namespace, pod.Name)
	s := containerStatus(p.Status.ContainerStatuses, "app")
	if s == nil || s.State.Running == nil || s.RestartCount != 0 {
		t.Errorf("app of %s/%s: %v, want running with restartCount 0", pod.Namespace, pod.Name, s)
	}
}

// imageDigestRef names localhost/busybox by its manifest digest. An
// imported image has no such name in the runtime, as a pulled one would:
// it is tagged with it (containerd's ctr), so that a debug container of it
// runs. When that fails the test goes on with the name alone: the policy
// decides on the name, and such a container then waits for its image.
func imageDigestRef(t *testing.T) string {
	t.Helper()
	sock := strings.TrimPrefix(os.Getenv("CONTAINER_RUNTIME_ENDPOINT"), "unix://")
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command("ctr", append([]string{"-n", "k8s.io", "--address", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := ctr("images", "ls", "name=="+busyboxImage)
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	var digest string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == busyboxImage && strings.HasPrefix(f[2], "sha256:") {
			digest = f[2]
		}
	}
	if digest == "" {
		t.Fatalf("no digest of %s in ctr images ls:\n%s", busyboxImage, out)
	}
	ref := "localhost/busybox@" + digest
	if out, err := ctr("images", "tag", "--force", busyboxImage, ref); err != nil {
		t.Logf("ctr images tag %s %s: %v\n%s (a debug container of it will wait for its image)", busyboxImage, ref, err, out)
		return ref
	}
	// The name goes with the test; containers of it keep running.
	t.Cleanup(func() {
		if out, err := ctr("images", "rm", ref); err != nil {
			t.Logf("ctr images rm %s: %v\n%s", ref, err, out)
		}
	})
	return ref
}

// withSecurity returns ec with security context sc.
func withSecurity(ec v1.EphemeralContainer, sc *v1.SecurityContext) v1.EphemeralContainer {
	ec.SecurityContext = sc
	return ec
}

// TestDebugPolicy runs one agent with testPolicy and checks each rule's
// allowed and denied cases, the namespace selector, kubectl debug -it on a
// denied image, the resource caps (in the runtime's spec, and enforced),
// maxDuration, and the stop annotation.
func TestDebugPolicy(t *testing.T) {
	kinds := []string{"restricted", "digest", "nonroot", "privileged", "caps", "deadline", ""}
	nss := map[string]string{}
	// The namespaces and their labels are there before the agent starts,
	// so its namespace cache holds the labels from its first decision.
	for _, k := range kinds {
		nss[k] = policyNamespace(t, k)
	}
	policy := filepath.Join(t.TempDir(), "debug-policy.yaml")
	writePolicy(t, policy, testPolicy)
	startAgent(t, "--debug-policy-config", policy)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	pods := map[string]*v1.Pod{}
	for _, k := range kinds {
		createPod(t, sharedAppPod(nss[k], "app"))
	}
	for _, k := range kinds {
		pods[k] = waitPod(t, nss[k], "app", "Running", 90*time.Second, phaseIs(v1.PodRunning))
	}
	digest := imageDigestRef(t)

	type policyCase struct {
		name, kind string
		ec         v1.EphemeralContainer
		// rule is the rule that decides ("" none); why is part of the
		// denial message, "" for an allowed container.
		rule, why string
		// imageWait: allowed, but its image is not in the runtime under
		// that name, so it waits for it rather than run.
		imageWait bool
	}
	distroless := func(name, target string) v1.EphemeralContainer {
		ec := debugContainer(name, target)
		ec.Image = distrolessImage
		return ec
	}
	addCaps := func(caps ...v1.Capability) *v1.SecurityContext {
		return &v1.SecurityContext{Capabilities: &v1.Capabilities{Add: caps}}
	}
	cases := []policyCase{
		{name: "image-ok", kind: "restricted", ec: sleepingDebugger("image-ok"), rule: "restricted"},
		{name: "image-other", kind: "restricted", ec: distroless("image-other", ""), rule: "restricted", why: "is not in the allowed images"},
		{name: "priv-denied", kind: "restricted", ec: withSecurity(sleepingDebugger("priv-denied"), &v1.SecurityContext{Privileged: ptr.To(true)}),
			rule: "restricted", why: "privileged debug containers are not allowed"},
		{name: "cap-ok", kind: "restricted", ec: withSecurity(sleepingDebugger("cap-ok"), addCaps("NET_ADMIN")), rule: "restricted"},
		{name: "cap-denied", kind: "restricted", ec: withSecurity(sleepingDebugger("cap-denied"), addCaps("NET_ADMIN", "SYS_ADMIN")),
			rule: "restricted", why: "capability SYS_ADMIN is not allowed"},
		{name: "target-denied", kind: "restricted", ec: debugContainer("target-denied", "app", "sleep", "3600"),
			rule: "restricted", why: "(--target) is not allowed"},
		{name: "tag-denied", kind: "digest", ec: sleepingDebugger("tag-denied"), rule: "digest", why: "must be named by digest"},
		{name: "digest-ok", kind: "digest", ec: func() v1.EphemeralContainer { ec := sleepingDebugger("digest-ok"); ec.Image = digest; return ec }(),
			rule: "digest", imageWait: true},
		{name: "root-denied", kind: "nonroot", ec: sleepingDebugger("root-denied"), rule: "nonroot", why: "must run as a non-root user"},
		{name: "uid0-denied", kind: "nonroot", ec: withSecurity(sleepingDebugger("uid0-denied"), &v1.SecurityContext{RunAsUser: ptr.To[int64](0)}),
			rule: "nonroot", why: "must run as a non-root user"},
		{name: "uid-outside", kind: "nonroot", ec: withSecurity(sleepingDebugger("uid-outside"), &v1.SecurityContext{RunAsUser: ptr.To[int64](3000)}),
			rule: "nonroot", why: "runAsUser 3000 is outside 1000-2000"},
		{name: "uid-nonroot-only", kind: "nonroot", ec: withSecurity(sleepingDebugger("uid-nonroot-only"), &v1.SecurityContext{RunAsNonRoot: ptr.To(true)}),
			rule: "nonroot", why: "must set runAsUser in 1000-2000"},
		{name: "uid-ok", kind: "nonroot", ec: withSecurity(sleepingDebugger("uid-ok"), &v1.SecurityContext{RunAsUser: ptr.To[int64](1500)}), rule: "nonroot"},
		{name: "priv-ok", kind: "privileged", ec: withSecurity(sleepingDebugger("priv-ok"), &v1.SecurityContext{Privileged: ptr.To(true)}), rule: "privileged"},
		// No rule selects an unlabelled namespace: what "restricted"
		// denies runs there.
		{name: "free-image", kind: "", ec: distroless("free-image", "app"), rule: ""},
		{name: "free-priv", kind: "", ec: withSecurity(debugContainer("free-priv", "app", "sleep", "3600"),
			&v1.SecurityContext{Privileged: ptr.To(true), Capabilities: &v1.Capabilities{Add: []v1.Capability{"SYS_ADMIN"}}}), rule: ""},
	}

	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				pod := pods[tc.kind]
				addEphemeral(t, pod, tc.ec)
				switch {
				case tc.why != "":
					assertDenied(t, pod, tc.name, tc.rule, tc.why)
				case tc.imageWait:
					// The policy decides before the image is pulled:
					// waiting for the image is being allowed.
					got := waitPod(t, pod.Namespace, pod.Name, tc.name+" running or waiting for its image", 60*time.Second, func(p *v1.Pod) bool {
						s := ephemeralStatus(p, tc.name)
						return s != nil && (s.State.Running != nil || s.State.Terminated != nil ||
							(s.State.Waiting != nil && s.State.Waiting.Reason != "ContainerCreating" && s.State.Waiting.Reason != ""))
					})
					s := ephemeralStatus(got, tc.name)
					t.Logf("%s named by digest (%s): %s", tc.name, tc.ec.Image, describeState(s.State))
					if s.State.Terminated != nil || (s.State.Waiting != nil && !strings.Contains(s.State.Waiting.Reason, "Image")) {
						t.Errorf("%s: %s, want it running or waiting for its image", tc.name, describeState(s.State))
					}
					if s.State.Running != nil {
						assertAllowed(t, pod, tc.name, tc.rule)
					}
				default:
					assertAllowed(t, pod, tc.name, tc.rule)
				}
			})
		}

		t.Run("kubectl-debug-it-denied", func(t *testing.T) {
			t.Parallel()
			pod := pods["restricted"]
			term := startTerminal(t, "kubectl", "-n", pod.Namespace, "debug", "-it", pod.Name, "--image="+distrolessImage,
				"--image-pull-policy=Never", "--container=kdenied", "--", "sh")
			code := term.wait(60 * time.Second)
			t.Logf("kubectl debug -it on a denied image exited %d, showing:\n%s", code, term.output())
			if code == 0 {
				t.Errorf("kubectl debug -it on a denied image exited 0, want non-zero")
			}
			if !strings.Contains(term.output(), debugapi.ReasonPolicyDenied) {
				t.Errorf("kubectl debug -it on a denied image does not say %s", debugapi.ReasonPolicyDenied)
			}
			assertDenied(t, pod, "kdenied", "restricted", "is not in the allowed images")
		})

		// kubectl debug's profiles ask for privileges the way users do.
		for _, pc := range []struct{ name, kind, profile, rule, why string }{
			{"ksysadmin", "restricted", "sysadmin", "restricted", "privileged debug containers are not allowed"},
			{"knetadmin", "restricted", "netadmin", "restricted", "is not allowed (allowed: NET_ADMIN)"},
			{"ksysadmin-ok", "privileged", "sysadmin", "privileged", ""},
		} {
			t.Run("kubectl-debug-profile-"+pc.name, func(t *testing.T) {
				t.Parallel()
				pod := pods[pc.kind]
				mustKubectl(t, "-n", pod.Namespace, "debug", pod.Name, "--image="+busyboxImage, "--image-pull-policy=Never",
					"--profile="+pc.profile, "--container="+pc.name, "--", "sleep", "3600")
				if pc.why != "" {
					assertDenied(t, pod, pc.name, pc.rule, pc.why)
					return
				}
				assertAllowed(t, pod, pc.name, pc.rule)
			})
		}

		t.Run("caps-in-runtime-spec", func(t *testing.T) {
			t.Parallel()
			pod := pods["caps"]
			addEphemeral(t, pod, sleepingDebugger("capped"))
			assertAllowed(t, pod, "capped", "caps")
			assertCaps(t, pod, "capped")
		})

		t.Run("defaults-without-rule", func(t *testing.T) {
			t.Parallel()
			pod := pods[""]
			addEphemeral(t, pod, sleepingDebugger("defaulted"))
			c := assertAllowed(t, pod, "defaulted", "")
			if got := c.Annotations[debugapi.ResourcesAnnotation]; got != "pids=100" {
				t.Errorf("annotation %s of a debugger no rule matches = %q, want the defaults' pids=100", debugapi.ResourcesAnnotation, got)
			}
			waitPidsMax(t, criInfo(t, c.Id).Pid, "100")
		})

		t.Run("caps-memory-enforced", func(t *testing.T) {
			t.Parallel()
			pod := pods["caps"]
			// dd reads 200 MiB of /dev/zero into one buffer: its pages are
			// all touched, far past the 64Mi cap.
			addEphemeral(t, pod, debugContainer("hog", "", "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"))
			s := waitEphemeralTerminated(t, pod, "hog", 90*time.Second)
			t.Logf("memory hog ended: %s", describeState(s.State))
			if term := s.State.Terminated; term.Reason != "OOMKilled" && term.ExitCode != 137 {
				t.Errorf("memory hog past its 64Mi cap: %s, want OOMKilled (or exit 137)", describeState(s.State))
			}
		})

		t.Run("max-duration", func(t *testing.T) {
			t.Parallel()
			pod := pods["deadline"]
			addEphemeral(t, pod, sleepingDebugger("overdue"))
			assertAllowed(t, pod, "overdue", "deadline")
			s := waitEphemeralTerminated(t, pod, "overdue", 60*time.Second)
			if term := s.State.Terminated; term.Reason != debugapi.ReasonDeadlineExceeded || !strings.Contains(term.Message, "maxDuration of 5s") {
				t.Errorf("debugger past its maxDuration: %s, want Terminated %s naming maxDuration of 5s", describeState(s.State), debugapi.ReasonDeadlineExceeded)
			}
			if term := s.State.Terminated; term.StartedAt.IsZero() || term.FinishedAt.Sub(term.StartedAt.Time) < 5*time.Second {
				t.Errorf("debugger ended %v after its start %v, want no sooner than its maxDuration", term.FinishedAt, term.StartedAt)
			}
			waitDebugEvent(t, pod, "overdue", v1.EventTypeNormal, debugapi.ReasonDeadlineExceeded)
			stayEnded(t, pod, "overdue", debugapi.ReasonDeadlineExceeded, true)
		})

		t.Run("stop-running-shell", func(t *testing.T) {
			t.Parallel()
			pod := pods[""]
			ec := debugContainer("shell", "app", "sh", "-i")
			ec.Stdin, ec.TTY = true, true
			addEphemeral(t, pod, ec)
			assertAllowed(t, pod, "shell", "")
			requestStop(t, pod, "shell")
			s := waitEphemeralTerminated(t, pod, "shell", 30*time.Second)
			if term := s.State.Terminated; term.Reason != debugapi.ReasonStopRequested {
				t.Errorf("shell after the stop request: %s, want Terminated %s", describeState(s.State), debugapi.ReasonStopRequested)
			}
			waitDebugEvent(t, pod, "shell", v1.EventTypeNormal, debugapi.ReasonStopRequested)
			stayEnded(t, pod, "shell", debugapi.ReasonStopRequested, true)
		})

		t.Run("stop-before-created", func(t *testing.T) {
			t.Parallel()
			// Not the shell's pod: each case's stop annotation is its
			// own.
			pod := pods["privileged"]
			ec := sleepingDebugger("unborn")
			ec.Image = missingImage
			addEphemeral(t, pod, ec)
			waitPod(t, pod.Namespace, pod.Name, "unborn waiting for its image", 60*time.Second, ephemeralWaiting("unborn", "ErrImageNeverPull"))
			requestStop(t, pod, "unborn")
			s := waitEphemeralTerminated(t, pod, "unborn", 30*time.Second)
			assertEndedBy(t, pod, s, debugapi.ReasonStopRequested, false)
			waitDebugEvent(t, pod, "unborn", v1.EventTypeNormal, debugapi.ReasonStopRequested)
			stayEnded(t, pod, "unborn", debugapi.ReasonStopRequested, false)

			// A stop asked for before the debug container is even in the
			// spec: it never runs either.
			requestStop(t, pod, "early")
			addEphemeral(t, pod, sleepingDebugger("early"))
			s = waitEphemeralTerminated(t, pod, "early", 30*time.Second)
			assertEndedBy(t, pod, s, debugapi.ReasonStopRequested, false)
			waitDebugEvent(t, pod, "early", v1.EventTypeNormal, debugapi.ReasonStopRequested)
		})
	})

	for _, k := range kinds {
		assertAppUntouched(t, pods[k])
	}
	for _, k := range kinds {
		cleanupPods(t, nss[k])
	}
}

// requestStop asks, by the pod's annotation, that its debug container name
// stop, adding it to the names there.
func requestStop(t *testing.T, pod *v1.Pod, name string) {
	t.Helper()
	cur := getPod(t, pod.Namespace, pod.Name).Annotations[debugapi.StopAnnotation]
	mustKubectl(t, "-n", pod.Namespace, "annotate", "--overwrite", "pod", pod.Name, debugapi.StopAnnotation+"="+debugapi.WithName(cur, name))
}

// capsInfo is the part of containerd's verbose container info that shows
// the caps.
type capsInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec struct {
		Annotations map[string]string `json:"annotations"`
		Linux       struct {
			Resources struct {
				CPU *struct {
					Quota  int64  `json:"quota"`
					Period uint64 `json:"period"`
				} `json:"cpu"`
				Memory *struct {
					Limit int64 `json:"limit"`
				} `json:"memory"`
			} `json:"resources"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// assertCaps checks the caps of the "caps" rule on running debug container
// name: CPU and memory in the runtime's spec, the annotations, and the
// pids.max of its cgroup.
func assertCaps(t *testing.T, pod *v1.Pod, name string) {
	t.Helper()
	c := assertOneEphemeralCRIContainer(t, pod, name)
	resp, err := criClient(t).ContainerStatus(context.Background(), c.Id, true)
	if err != nil {
		t.Fatal(err)
	}
	var info capsInfo
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("decode verbose info of %s: %v", c.Id, err)
	}
	res := info.RuntimeSpec.Linux.Resources
	if res.CPU == nil || res.CPU.Quota != 20000 || res.CPU.Period != 100000 {
		t.Errorf("runtime spec CPU of the capped debugger: %+v, want quota 20000 period 100000", res.CPU)
	}
	if res.Memory == nil || res.Memory.Limit != 64<<20 {
		t.Errorf("runtime spec memory of the capped debugger: %+v, want limit %d", res.Memory, 64<<20)
	}
	ann := resp.GetStatus().GetAnnotations()
	if got := ann[debugapi.ResourcesAnnotation]; got != "cpu=200m,memory=64Mi,pids=64" {
		t.Errorf("annotation %s = %q, want cpu=200m,memory=64Mi,pids=64", debugapi.ResourcesAnnotation, got)
	}
	if got := ann[debugapi.PolicyRuleAnnotation]; got != "caps" {
		t.Errorf("annotation %s = %q, want caps", debugapi.PolicyRuleAnnotation, got)
	}
	t.Logf("crictl inspect of the capped debugger (resources):\n%s", crictlResources(t, c.Id))

	// Inside the pod's cgroup: what the debugger uses counts in the pod's.
	if p := pidsMaxOf(t, info.Pid); !strings.Contains(p, "/pod"+string(pod.UID)+"/") {
		t.Errorf("the capped debugger's cgroup %s is not inside its pod's (pod%s)", p, pod.UID)
	}
	waitPidsMax(t, info.Pid, "64")
}

// waitPidsMax waits until the cgroup of process pid has pids.max want: the
// agent writes it just after the container started.
func waitPidsMax(t *testing.T, pid int, want string) {
	t.Helper()
	pidsMax := pidsMaxOf(t, pid)
	waitFor(t, "pids.max "+want+" on the debugger's cgroup "+pidsMax, 30*time.Second, func(context.Context) (bool, error) {
		b, err := os.ReadFile(pidsMax)
		if err != nil {
			return false, err
		}
		if got := strings.TrimSpace(string(b)); got != want {
			return false, fmt.Errorf("pids.max is %s", got)
		}
		return true, nil
	})
}

// crictlResources is what crictl inspect shows of a container's resources
// and annotations, for the log.
func crictlResources(t *testing.T, id string) string {
	t.Helper()
	var out struct {
		Status struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"status"`
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Resources json.RawMessage `json:"resources"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	raw := crictl(t, "inspect", "-o", "json", id)
	if err := json.Unmarshal([]byte(raw[max(strings.Index(raw, "{"), 0):]), &out); err != nil {
		t.Errorf("crictl inspect %s: %v", id, err)
		return ""
	}
	return fmt.Sprintf("annotations %v\nresources %s", out.Status.Annotations, out.Info.RuntimeSpec.Linux.Resources)
}

// pidsMaxOf is the pids.max file of the cgroup process pid runs in, on
// either cgroup version.
func pidsMaxOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("cgroups of the debugger's process %d: %v", pid, err)
	}
	var unified string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			if ctrl == "pids" {
				return filepath.Join("/sys/fs/cgroup/pids", f[2], "pids.max")
			}
		}
		if f[0] == "0" && f[1] == "" {
			unified = f[2]
		}
	}
	if unified == "" {
		t.Fatalf("process %d is in no pids cgroup:\n%s", pid, b)
	}
	return filepath.Join("/sys/fs/cgroup", unified, "pids.max")
}

// TestDebugPolicyIdleTimeout: a debug container no session reaches ends
// after its rule's idleTimeout.
func TestDebugPolicyIdleTimeout(t *testing.T) {
	ns := policyNamespace(t, "idle")
	policy := filepath.Join(t.TempDir(), "debug-policy.yaml")
	writePolicy(t, policy, policyHeader+`rules:
- name: idle
  namespaceSelector: {matchLabels: {`+policyLabel+`: idle}}
  idleTimeout: 5s
`)
	startAgent(t, "--debug-policy-config", policy)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	pod := runningSharedApp(t, ns, "app")
	addEphemeral(t, pod, sleepingDebugger("idler"), sleepingDebugger("busy"))
	assertAllowed(t, pod, "idler", "idle")
	assertAllowed(t, pod, "busy", "idle")
	// An exec session longer than the idle timeout keeps busy up; its
	// idle clock starts again when the session ends.
	execOut := mustKubectl(t, "-n", ns, "exec", pod.Name, "-c", "busy", "--", "sh", "-c", "sleep 8; echo session-done")
	execEnded := time.Now()
	if !strings.Contains(execOut, "session-done") {
		t.Errorf("exec into busy: %q", execOut)
	}
	if s := ephemeralStatus(getPod(t, ns, pod.Name), "busy"); s == nil || s.State.Running == nil {
		t.Errorf("busy, in an exec session for 8 s, past its idleTimeout of 5s: %v, want it running", s)
	}
	var s *v1.ContainerStatus
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		s = ephemeralStatus(p, "idler")
		return s != nil && s.State.Terminated != nil, nil
	})
	if err != nil {
		// The agent needs its session tracker wired in (kuberuntime
		// Deps.Sessions) to tell idle debuggers: without it none is.
		t.Fatalf("a debugger without sessions still %s 60 s after its start, want Terminated %s after its idleTimeout of 5s "+
			"(is the agent's session tracker wired into the sync loop?)", describeState(s.State), debugapi.ReasonSessionIdle)
	}
	if term := s.State.Terminated; term.Reason != debugapi.ReasonSessionIdle {
		t.Errorf("a debugger without sessions: %s after its idleTimeout of 5s, want Terminated %s", describeState(s.State), debugapi.ReasonSessionIdle)
	}
	waitDebugEvent(t, pod, "idler", v1.EventTypeNormal, debugapi.ReasonSessionIdle)
	stayEnded(t, pod, "idler", debugapi.ReasonSessionIdle, true)

	busy := waitEphemeralTerminated(t, pod, "busy", 60*time.Second)
	if term := busy.State.Terminated; term.Reason != debugapi.ReasonSessionIdle {
		t.Errorf("busy after its session: %s, want Terminated %s", describeState(busy.State), debugapi.ReasonSessionIdle)
	} else if idle := term.FinishedAt.Sub(execEnded); idle < 3*time.Second {
		// finishedAt has whole seconds: 5 s after the session, less one
		// for the rounding and one for clocks read in two places.
		t.Errorf("busy ended %s after its last session ended, before its idleTimeout of 5s", idle)
	}
	assertAppUntouched(t, pod)
	cleanupPods(t, ns)
}

// TestDebugPolicyFileRefused: the agent does not start with a policy file
// that has errors, and says what is wrong.
func TestDebugPolicyFileRefused(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		want          []string
	}{
		{"unknown-field", policyHeader + "rules:\n- name: typo\n  maxDuraton: 5m\n", []string{"maxDuraton"}},
		{"empty-uid-range", policyHeader + "rules:\n- name: backwards\n  runAsUser: {min: 2000, max: 1000}\n", []string{"backwards", "runAsUser"}},
		{"wrong-kind", "apiVersion: debug.ephemeral-agent.io/v1alpha1\nkind: DebugPolicies\nrules: []\n", []string{"DebugPolicies"}},
		{"missing-file", "", []string{"read debug policy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			if tc.content != "" {
				writePolicy(t, path, tc.content)
			}
			out, code := runAgentBriefly(t, "--debug-policy-config", path)
			t.Logf("agent with policy file %s exited %d:\n%s", tc.name, code, tail([]byte(out), 2048))
			if code == 0 {
				t.Errorf("the agent exited 0 with a bad policy file, want non-zero")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the agent's output does not name the problem %q", w)
				}
			}
		})
	}
}

// runAgentBriefly runs the agent binary as startAgent would, expecting it
// to exit by itself, and returns its output and exit code; one that still
// runs after 60 s fails the test.
func runAgentBriefly(t *testing.T, extra ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append(append([]string{}, testEnv.agentArgs...), e2eAgentFlags...), extra...)
	cmd := exec.CommandContext(ctx, testEnv.agentBinary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the agent still ran after 60 s (killed); output:\n%s", tail(out, 4096))
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run the agent: %v", err)
	}
	return string(out), 0
}

// TestDebugPolicyReload: the agent reloads its policy file; a file with
// errors is refused, logged, and the previous policy stays in force; a
// good file then takes over.
func TestDebugPolicyReload(t *testing.T) {
	ns := policyNamespace(t, "")
	policy := filepath.Join(t.TempDir(), "debug-policy.yaml")
	strict := policyHeader + "rules:\n- name: strict\n  images: [localhost/busybox]\n"
	writePolicy(t, policy, strict)
	a := startAgent(t, "--debug-policy-config", policy)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	pod := runningSharedApp(t, ns, "app")

	distroless := func(name string) v1.EphemeralContainer {
		ec := debugContainer(name, "")
		ec.Image = distrolessImage
		return ec
	}
	addEphemeral(t, pod, distroless("before"))
	assertDenied(t, pod, "before", "strict", "is not in the allowed images")

	writePolicy(t, policy, policyHeader+"rules:\n- name: strict\n  images: [localhost/busybox]\n  maxDuraton: 5m\n")
	waitLog(t, a, "Refused the debug policy file")
	if !agentServes() {
		t.Fatalf("the agent stopped serving after a bad policy file")
	}
	addEphemeral(t, pod, distroless("refused"))
	assertDenied(t, pod, "refused", "strict", "is not in the allowed images")

	writePolicy(t, policy, policyHeader+"rules:\n- name: relaxed\n  images: [localhost/**]\n")
	waitLog(t, a, "generation=2")
	addEphemeral(t, pod, distroless("after"))
	assertAllowed(t, pod, "after", "relaxed")
	assertAppUntouched(t, pod)
	cleanupPods(t, ns)
}

// waitLog waits until the agent's log shows want.
func waitLog(t *testing.T, a *agent, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the agent's log to show %q", want), 30*time.Second, func(context.Context) (bool, error) {
		b, err := os.ReadFile(a.logPath)
		return err == nil && strings.Contains(string(b), want), err
	})
}
