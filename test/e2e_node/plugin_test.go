//go:build e2e

package e2enode

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// ephemeralPlugin runs `kubectl ephemeral ARGS`, so that kubectl's plugin
// discovery finds kubectl-ephemeral on PATH (_output/bin, as make run's
// env has it).
func ephemeralPlugin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("kubectl-ephemeral"); err != nil {
		t.Fatalf("kubectl-ephemeral is not on PATH (make build puts it in _output/bin): %v", err)
	}
	return kubectl(t, append([]string{"ephemeral"}, args...)...)
}

func mustEphemeralPlugin(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ephemeralPlugin(t, args...)
	if err != nil {
		t.Fatalf("kubectl ephemeral %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// lsRow returns the fields of ls's row for a pod's debug container, with
// STATE whole (it may read "Running (stop requested)"); nil when absent.
func lsRow(out, pod, name string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != pod || f[1] != name {
			continue
		}
		if len(f) == 9 && f[5] == "(stop" {
			f = append(f[:4], f[4]+" "+f[5]+" "+f[6], f[7], f[8])
		}
		return f
	}
	return nil
}

func TestKubectlEphemeralPlugin(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "web")

	if out := mustEphemeralPlugin(t); !strings.Contains(out, "kubectl ephemeral [command]") {
		t.Errorf("kubectl ephemeral without a command prints no usage:\n%s", out)
	}
	if out := mustEphemeralPlugin(t, "-n", ns, "ls"); !strings.Contains(out, "No debug containers found in "+ns+" namespace.") {
		t.Errorf("ls before any debug container:\n%s", out)
	}

	mustKubectl(t, "-n", ns, "debug", pod.Name, "--image="+busyboxImage, "--image-pull-policy=Never",
		"--target=app", "--container=sleeper", "--", "sleep", "3600")
	mustKubectl(t, "-n", ns, "debug", pod.Name, "--image="+busyboxImage, "--image-pull-policy=Never",
		"--container=done", "--", "true")
	waitPod(t, ns, pod.Name, "sleeper running, done terminated", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "sleeper")
		return s != nil && s.State.Running != nil && ephemeralTerminated("done")(p)
	})

	out := mustEphemeralPlugin(t, "-n", ns, "ls")
	t.Logf("kubectl ephemeral ls:\n%s", out)
	if !strings.HasPrefix(out, "POD ") || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "NAME") {
		t.Errorf("ls has no header")
	}
	if r := lsRow(out, pod.Name, "sleeper"); r == nil || r[2] != busyboxImage || r[3] != "app" || r[4] != "Running" || r[5] != "-" {
		t.Errorf("ls row of sleeper = %q, want image %s, target app, Running", r, busyboxImage)
	}
	if r := lsRow(out, pod.Name, "done"); r == nil || r[3] != "-" || r[4] != "Terminated" || r[5] != "Completed" {
		t.Errorf("ls row of done = %q, want no target, Terminated Completed", r)
	}
	var list struct {
		Items []struct {
			Name, Target, State, Reason string
			StartedAt                   *metav1.Time
		}
	}
	if out, err := ephemeralPlugin(t, "-n", ns, "ls", "-o", "json"); err != nil || json.Unmarshal([]byte(out), &list) != nil ||
		len(list.Items) != 2 || list.Items[0].Name != "sleeper" || list.Items[0].State != "Running" || list.Items[0].Target != "app" ||
		list.Items[0].StartedAt == nil || list.Items[1].Reason != "Completed" {
		t.Errorf("ls -o json: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"ls", "-A"}, {"ls", "--node", testEnv.nodeName}} {
		out := mustEphemeralPlugin(t, args...)
		if !strings.HasPrefix(out, "NAMESPACE ") || !strings.Contains(out, ns+" ") || !strings.Contains(out, "sleeper") {
			t.Errorf("%s lacks the namespace column or the pod's rows:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := mustEphemeralPlugin(t, "ls", "--node", "no-such-node"); strings.Contains(out, "sleeper") {
		t.Errorf("ls --node of another node lists our pod:\n%s", out)
	}

	// stop: an app container is refused, a terminated one left alone, a
	// running one named in the annotation. Whether the agent then stops it
	// is the agent's test, not the plugin's.
	if out, err := ephemeralPlugin(t, "-n", ns, "stop", pod.Name, "app"); err == nil || !strings.Contains(out, "has no debug container app") {
		t.Errorf("stop of an app container: %v\n%s", err, out)
	}
	if out := mustEphemeralPlugin(t, "-n", ns, "stop", pod.Name, "done"); !strings.Contains(out, "debug container done of pod "+ns+"/web: already terminated") {
		t.Errorf("stop of a terminated container:\n%s", out)
	}
	out = mustEphemeralPlugin(t, "-n", ns, "stop", pod.Name, "sleeper")
	if !strings.Contains(out, "debug container sleeper of pod "+ns+"/web: stop requested") {
		t.Errorf("stop:\n%s", out)
	}
	p, err := client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Annotations[debugapi.StopAnnotation]; got != "sleeper" {
		t.Errorf("stop annotation %q, want sleeper", got)
	}
	out = mustEphemeralPlugin(t, "-n", ns, "ls")
	if r := lsRow(out, pod.Name, "sleeper"); r == nil || (r[4] != "Running (stop requested)" && !(r[4] == "Terminated" && r[5] == debugapi.ReasonStopRequested)) {
		t.Errorf("ls row of sleeper after stop = %q, want Running (stop requested), or Terminated %s", r, debugapi.ReasonStopRequested)
	}

	for _, args := range [][]string{{"policy"}, {"policy", testEnv.nodeName}, {"-n", ns, "policy", "--pod", pod.Name}} {
		want := "node " + testEnv.nodeName + ": no policy"
		if out := mustEphemeralPlugin(t, args...); !strings.Contains(out, want) {
			t.Errorf("%s: want %q:\n%s", strings.Join(args, " "), want, out)
		}
	}
}

func TestKubectlEphemeralPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "debug-policy.yaml")
	policy := func(rule string) []byte {
		return []byte("apiVersion: " + "debug.ephemeral-agent.io/v1alpha1\nkind: DebugPolicy\nrules:\n" +
			"- name: " + rule + "\n  namespaceSelector:\n    matchLabels: {env: prod}\n  images: [busybox]\n" +
			"- name: default\n")
	}
	if err := os.WriteFile(path, policy("prod"), 0o644); err != nil {
		t.Fatal(err)
	}
	startAgent(t, "--debug-policy-config="+path)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	out := mustEphemeralPlugin(t, "policy")
	t.Logf("kubectl ephemeral policy:\n%s", out)
	for _, want := range []string{"node: " + testEnv.nodeName, "path: " + path, "generation: 1", "name: prod", "name: default", "kind: DebugPolicy"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy lacks %q", want)
		}
	}
	// The agent reloads a changed file; the plugin shows the new policy.
	if err := os.WriteFile(path, policy("production"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded policy", 30*time.Second, func(context.Context) (bool, error) {
		out, err := ephemeralPlugin(t, "policy", testEnv.nodeName)
		return err == nil && strings.Contains(out, "name: production") && strings.Contains(out, "generation: 2"), nil
	})
	// A refused file keeps the policy in force, and the plugin says so.
	if err := os.WriteFile(path, []byte("apiVersion: v1\nkind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused policy file reported", 30*time.Second, func(context.Context) (bool, error) {
		out, err := ephemeralPlugin(t, "policy")
		return err == nil && strings.Contains(out, "lastError:") && strings.Contains(out, "Warning: node "+testEnv.nodeName+" refused") &&
			strings.Contains(out, "name: production"), nil
	})
}
