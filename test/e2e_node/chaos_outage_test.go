//go:build e2e

package e2enode

// The API server outage of the fault tests: kube-apiserver stops while
// debug containers start and exit and a container crash-loops; the pods
// keep running on the node, and after the API server's return every status
// converges and the node stays Ready.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nodeMonitorGracePeriod is kube-controller-manager's default
// --node-monitor-grace-period (1.32 and later), which hack/cluster.sh
// keeps: the node lifecycle controller marks a node's Ready condition
// Unknown when it saw no heartbeat (Lease or status) for that long.
const nodeMonitorGracePeriod = 50 * time.Second

// readyRestoreBound is how soon after the API server's return (or after the
// controller marked it Unknown) the agent must report Ready=True again: a
// few of the e2e agent's 1s status periods.
const readyRestoreBound = 10 * time.Second

// readySample is one observation of the node's Ready condition.
type readySample struct {
	at     time.Time
	status v1.ConditionStatus
	reason string
}

// readyWatch polls the node's Ready condition until stopped, keeping every
// change, so the test can say what the node went through.
type readyWatch struct {
	mu      sync.Mutex
	samples []readySample
	stop    chan struct{}
	done    chan struct{}
}

func watchReady(ctx context.Context, c kubernetes.Interface) *readyWatch {
	w := &readyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := c.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{}); err == nil {
				s := readySample{at: time.Now(), status: "missing"}
				if c := readyCondition(n); c != nil {
					s.status, s.reason = c.Status, c.Reason
				}
				w.mu.Lock()
				if l := len(w.samples); l == 0 || w.samples[l-1].status != s.status || w.samples[l-1].reason != s.reason {
					w.samples = append(w.samples, s)
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// end stops the watch and returns the changes it saw.
func (w *readyWatch) end() []readySample {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]readySample(nil), w.samples...)
}

func describeReady(ss []readySample, since time.Time) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("+%.1fs %s/%s", s.at.Sub(since).Seconds(), s.status, s.reason))
	}
	return strings.Join(parts, ", ")
}

// latestAttempt returns the newest CRI container of the pod's container
// name (highest attempt), nil when there is none.
func latestAttempt(t *testing.T, rs internalapi.RuntimeService, uid, name string) *runtimeapi.Container {
	t.Helper()
	var latest *runtimeapi.Container
	for _, c := range criContainers(t, rs, uid, name) {
		if latest == nil || c.GetMetadata().GetAttempt() > latest.GetMetadata().GetAttempt() {
			latest = c
		}
	}
	return latest
}

// markNodeUnknown does what the node lifecycle controller does to a node
// whose heartbeats stopped for its grace period: Ready becomes Unknown with
// its reason and message.
func markNodeUnknown(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	c := readyCondition(n)
	if c == nil {
		t.Fatalf("node %s has no Ready condition", testEnv.nodeName)
	}
	now := metav1.Now()
	cond := map[string]any{
		"type": v1.NodeReady, "status": v1.ConditionUnknown, "reason": "NodeStatusUnknown",
		"message": "Kubelet stopped posting node status.", "lastHeartbeatTime": c.LastHeartbeatTime, "lastTransitionTime": now,
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []any{cond}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().PatchStatus(ctx, testEnv.nodeName, patch); err != nil {
		t.Fatalf("mark node Ready=Unknown: %v", err)
	}
}

// TestChaosAPIServerOutage stops kube-apiserver for scale.Outage while
// debug containers run and exit, one starts, and a container crash-loops.
// The pods keep running (seen through CRI), the agent lives and stays
// healthy; after the return every status converges (the figure
// max_converge_s) and the node is Ready with its Lease renewed.
func TestChaosAPIServerOutage(t *testing.T) {
	scale := chaos(t)
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	// Registered after the namespace's cleanups, so it runs before them:
	// a test that fails mid-outage leaves the API server running.
	t.Cleanup(func() { clusterScript(t, "start", "kube-apiserver") })
	rs := criClient(t)
	ctx := context.Background()
	fc := fastClient(t)

	// Three apps sharing an emptyDir with their debuggers; a pod whose
	// second container exits every few seconds (restartPolicy Always); a
	// pod whose init container waits for a file the test writes during the
	// outage, so that its app starts then.
	const loopName = "loop"
	apps := []string{"app-0", "app-1", "app-2"}
	for _, name := range apps {
		createPod(t, sharedAppPod(ns, name))
	}
	looperPod := sharedAppPod(ns, "looper")
	looperPod.Spec.Containers = append(looperPod.Spec.Containers, v1.Container{Name: loopName, Image: busyboxImage, ImagePullPolicy: v1.PullNever,
		Command: []string{"sh", "-c", "sleep 4; exit 1"}})
	createPod(t, looperPod)
	gatedPod := sharedAppPod(ns, "gated")
	gatedPod.Spec.InitContainers = []v1.Container{{Name: "gate", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
		Command:      []string{"sh", "-c", "until [ -e /shared/go ]; do sleep 0.2; done"},
		VolumeMounts: []v1.VolumeMount{{Name: sharedVolume, MountPath: "/shared"}}}}
	createPod(t, gatedPod)
	pods := map[string]*v1.Pod{}
	for _, name := range append(append([]string{}, apps...), "looper") {
		pods[name] = waitPod(t, ns, name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	}
	pods["gated"] = waitPod(t, ns, "gated", "its init container running", 60*time.Second, func(p *v1.Pod) bool {
		s := containerStatus(p.Status.InitContainerStatuses, "gate")
		return s != nil && s.State.Running != nil
	})
	looper, gated := pods["looper"], pods["gated"]
	everyPod := append(append([]string{}, apps...), "looper", "gated")

	// The outage starts while the loop container waits out its first
	// back-off (10s; its first exit restarts it at once, as the kubelet
	// does): it restarts during the outage.
	var exited *runtimeapi.Container
	waitFor(t, "the loop container's second exit", 60*time.Second, func(context.Context) (bool, error) {
		c := latestAttempt(t, rs, string(looper.UID), loopName)
		if c != nil && c.State == runtimeapi.ContainerState_CONTAINER_EXITED && c.GetMetadata().GetAttempt() >= 1 {
			exited = c
			return true, nil
		}
		return false, nil
	})
	if exited.GetMetadata().GetAttempt() != 1 {
		t.Fatalf("the loop container is at attempt %d already: its back-off outlasts the outage", exited.GetMetadata().GetAttempt())
	}

	// Debuggers that end during the outage: they run before it and sleep
	// a third and two thirds of it (plus the few seconds until it starts).
	short, long := int(scale.Outage.Seconds()/3)+3, int(2*scale.Outage.Seconds()/3)+3
	type dbg struct{ pod, name string }
	var debuggers []dbg
	for _, name := range apps {
		addEphemeral(t, pods[name], countingDebugger("short", short))
		addEphemeral(t, pods[name], countingDebugger("long", long))
		debuggers = append(debuggers, dbg{name, "short"}, dbg{name, "long"})
	}
	for _, name := range apps {
		waitPod(t, ns, name, "its debuggers running", 30*time.Second, func(p *v1.Pod) bool {
			s, l := ephemeralStatus(p, "short"), ephemeralStatus(p, "long")
			return s != nil && s.State.Running != nil && l != nil && l.State.Running != nil
		})
	}
	// A debugger that starts during the outage: it targets the gated
	// pod's app, which starts then. And one added the moment before the
	// API server stops.
	late := countingDebugger("late", 0)
	late.TargetContainerName = "app"
	addEphemeral(t, gated, late)
	debuggers = append(debuggers, dbg{"gated", "late"})
	waitPod(t, ns, "gated", "the late debugger waiting for its target", 30*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "late")
		return s != nil && s.State.Waiting != nil
	})
	addEphemeral(t, pods[apps[0]], countingDebugger("now", 2))
	debuggers = append(debuggers, dbg{apps[0], "now"})

	appIDs := map[string]string{}
	for _, name := range append(append([]string{}, apps...), "looper") {
		c := latestAttempt(t, rs, string(pods[name].UID), "app")
		if c == nil || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("%s: the app container does not run before the outage", name)
		}
		appIDs[name] = c.Id
	}

	// The API server refuses connections as soon as it has SIGTERM; its
	// process may take 10s more to exit. The outage counts from the signal.
	down := time.Now()
	clusterScript(t, "stop", "kube-apiserver")
	t.Logf("kube-apiserver stopped (its process exited after %s); outage of %s", time.Since(down).Round(100*time.Millisecond), scale.Outage)

	// During the outage: the apps keep running in the runtime, the loop
	// container restarts, the gated app and its debugger start, debuggers
	// end, the agent lives and answers /healthz.
	var opened, lateStarted time.Time
	for time.Since(down) < scale.Outage {
		select {
		case <-a.done:
			t.Fatalf("the agent exited during the outage: %v", a.exitErr)
		default:
		}
		for name, id := range appIDs {
			c := latestAttempt(t, rs, string(pods[name].UID), "app")
			if c == nil || c.Id != id || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("%s: the app container %.12s stopped during the outage (now %s)", name, id, describeCRI(criContainers(t, rs, string(pods[name].UID), "app")))
				delete(appIDs, name)
			}
		}
		if opened.IsZero() && time.Since(down) >= scale.Outage/3 {
			if err := os.WriteFile(filepath.Join(sharedDir(gated), "go"), nil, 0o644); err != nil {
				t.Fatalf("open the gate: %v", err)
			}
			opened = time.Now()
		}
		if cs := criContainers(t, rs, string(gated.UID), "late"); lateStarted.IsZero() && len(cs) > 0 {
			lateStarted = time.Unix(0, cs[0].CreatedAt)
		}
		if code, body, err := healthz("/healthz?verbose"); err != nil || code != http.StatusOK {
			t.Errorf("/healthz during the outage: %d %v %q", code, err, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	loopAttempt := latestAttempt(t, rs, string(looper.UID), loopName).GetMetadata().GetAttempt()
	if loopAttempt <= exited.GetMetadata().GetAttempt() {
		t.Errorf("the loop container did not restart during the outage: attempt %d, as before it", loopAttempt)
	}
	if c := latestAttempt(t, rs, string(gated.UID), "app"); c == nil || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the gated app did not start during the outage: the runtime holds %s", describeCRI(criContainers(t, rs, string(gated.UID), "app")))
	}
	if lateStarted.IsZero() {
		t.Errorf("the late debugger did not start during the outage, after its target did")
	} else {
		t.Logf("the late debugger started %.1fs into the outage, %.1fs after the gate opened", lateStarted.Sub(down).Seconds(), lateStarted.Sub(opened).Seconds())
	}
	for _, d := range debuggers {
		if d.name == "now" {
			continue // it may not have started before the outage
		}
		if cs := criContainers(t, rs, string(pods[d.pod].UID), d.name); len(cs) != 1 || cs[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("%s/%s at the outage's end: the runtime holds %s, want one exited container", d.pod, d.name, describeCRI(cs))
		}
	}
	t.Logf("during the outage: the loop container reached attempt %d", loopAttempt)

	clusterScript(t, "start", "kube-apiserver")
	back := time.Now()
	outage := back.Sub(down)
	recordFigure(t, "apiserver_outage_s", math.Round(outage.Seconds()*10)/10)
	watch := watchReady(ctx, fc)
	watched := false
	defer func() {
		if !watched {
			watch.end()
		}
	}()

	// Convergence: every debugger Terminated with its exit 0 and one run,
	// the loop container's restarts counted up to what the runtime showed
	// at the return, the pods Running and the apps Ready.
	converged := func() (bool, string) {
		for _, name := range everyPod {
			p, err := fc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if p.Status.Phase != v1.PodRunning {
				return false, fmt.Sprintf("%s is %s", name, p.Status.Phase)
			}
			if name != "looper" && !podReady(p) {
				return false, name + " is not Ready"
			}
			if name == "looper" {
				if s := containerStatus(p.Status.ContainerStatuses, loopName); s == nil || s.RestartCount < int32(loopAttempt) {
					return false, fmt.Sprintf("the loop container's status %+v counts fewer restarts than the runtime's attempt %d", s, loopAttempt)
				}
			}
			for _, d := range debuggers {
				if d.pod != name {
					continue
				}
				s := ephemeralStatus(p, d.name)
				if s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
					return false, fmt.Sprintf("%s/%s: %+v", name, d.name, s)
				}
				if n := runs(t, p, d.name); n != 1 {
					return false, fmt.Sprintf("%s/%s ran %d times", name, d.name, n)
				}
			}
		}
		return true, ""
	}
	waitFor(t, "every status to converge after the API server's return", 120*time.Second, func(context.Context) (bool, error) {
		if ok, why := converged(); !ok {
			return false, fmt.Errorf("%s", why)
		}
		return true, nil
	})
	convergeS := time.Since(back).Seconds()
	maxFigure(t, "max_converge_s", convergeS)
	for _, d := range debuggers {
		if n := runs(t, pods[d.pod], d.name); n != 1 {
			t.Errorf("%s/%s ran %d times, want exactly 1", d.pod, d.name, n)
		}
	}

	// The node: the agent never reported Ready=False after the return, and
	// the controller's Unknown (after an outage longer than its grace
	// period) lasted no longer than readyRestoreBound.
	samples := watch.end()
	watched = true
	t.Logf("node Ready after the return: %s", describeReady(samples, back))
	for i, s := range samples {
		switch s.status {
		case v1.ConditionFalse:
			t.Errorf("the node went Ready=False (%s) %.1fs after the API server's return", s.reason, s.at.Sub(back).Seconds())
		case v1.ConditionUnknown:
			end := time.Now()
			if i+1 < len(samples) {
				end = samples[i+1].at
			}
			if d := end.Sub(s.at); d > readyRestoreBound {
				t.Errorf("the node stayed Ready=Unknown (%s) for %s from %.1fs after the return, want at most %s", s.reason, d.Round(100*time.Millisecond), s.at.Sub(back).Seconds(), readyRestoreBound)
			}
		}
	}
	// The controller did not mark the node for an outage shorter than its
	// grace period: the test plays its part, and the agent must put Ready
	// back to True at once.
	waitNodeReady(t, v1.ConditionTrue, readyRestoreBound)
	if outage < nodeMonitorGracePeriod {
		markNodeUnknown(t)
		marked := time.Now()
		waitNodeReady(t, v1.ConditionTrue, readyRestoreBound)
		t.Logf("the agent restored Ready=True %s after the node was marked Unknown (as the node lifecycle controller does)", time.Since(marked).Round(100*time.Millisecond))
	}
	lease, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, testEnv.nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the node's Lease: %v", err)
	}
	steady := time.Now()
	for time.Since(steady) < 20*time.Second {
		n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get node: %v", err)
		}
		if c := readyCondition(n); c == nil || c.Status != v1.ConditionTrue {
			t.Errorf("%s after convergence the node is not Ready: %+v", time.Since(steady).Round(100*time.Millisecond), c)
		}
		time.Sleep(500 * time.Millisecond)
	}
	renewed, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, testEnv.nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the node's Lease: %v", err)
	}
	if !renewed.Spec.RenewTime.After(lease.Spec.RenewTime.Time) {
		t.Errorf("the node's Lease was not renewed in 20s: renewTime %s, then %s", lease.Spec.RenewTime, renewed.Spec.RenewTime)
	}

	select {
	case <-a.done:
		t.Fatalf("the agent exited: %v", a.exitErr)
	default:
	}
	if code, body, err := healthz("/healthz?verbose"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz after the outage: %d %v %q", code, err, body)
	}
	t.Logf("converged %.1fs after an outage of %s", convergeS, outage.Round(100*time.Millisecond))
	cleanupPods(t, ns)
}
