//go:build e2e

package e2enode

// Pod churn of the fault tests: many pods created and deleted, a few at a
// time. Nothing of them may stay behind (queue, tracked pods, CRI objects,
// directories, mounts); the agent's memory growth and its idle CRI traffic
// at the end are figures.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// The agent metrics the churn test reads.
const (
	queueDepthMetric  = "workqueue_depth"
	trackedPodsMetric = "ephemeral_agent_tracked_pods"
	criOpsMetric      = "kubelet_runtime_operations_total"
)

// churnRSSWarnKB is the growth over a full run worth a loud log line; it is
// a figure, not a verdict.
const churnRSSWarnKB = 50 * 1024

// fastClient is a client of its own for a test's many requests: the
// suite's shared client has client-go's default rate limit (5 QPS), which
// would pace the test instead of the agent.
func fastClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", testEnv.kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfigOrDie(cfg)
}

// churnPod is a small pod that exits at once on SIGTERM.
func churnPod(ns, name string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"e2e-churn": "true"}},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}}},
		},
	}
}

// churnCycle creates the pod, waits until it runs, deletes it and waits
// until it is gone. It runs outside the test goroutine: errors, no Fatal.
func churnCycle(ctx context.Context, c kubernetes.Interface, ns, name string, created func(types.UID)) error {
	pods := c.CoreV1().Pods(ns)
	p, err := pods.Create(ctx, churnPod(ns, name), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	created(p.UID)
	var phase v1.PodPhase
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = got.Status.Phase
		if phase == v1.PodFailed || phase == v1.PodSucceeded {
			return false, fmt.Errorf("pod %s ended %s before it was deleted: %s", name, phase, got.Status.Message)
		}
		return phase == v1.PodRunning, nil
	})
	if err != nil {
		return fmt.Errorf("pod %s Running (last phase %q): %w", name, phase, err)
	}
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("pod %s gone after its deletion: %w", name, err)
	}
	return nil
}

// churn runs cycles [from, to) with parallel workers and returns the
// errors met; the first error stops the others.
func churn(c kubernetes.Interface, ns string, from, to, parallel int, created func(types.UID)) []error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := make(chan int)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range parallel {
		wg.Go(func() {
			for i := range next {
				if err := churnCycle(ctx, c, ns, fmt.Sprintf("churn-%04d", i), created); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for i := from; i < to; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return errs
}

// settledRSS is the agent's smallest RSS over samples taken a second apart
// after settle: the floor, without the transient peaks of a GC cycle.
func settledRSS(t *testing.T, pid int, settle time.Duration, samples int) int {
	t.Helper()
	time.Sleep(settle)
	least := 0
	for i := range samples {
		if i > 0 {
			time.Sleep(time.Second)
		}
		if kb := rssKB(t, pid); least == 0 || kb < least {
			least = kb
		}
	}
	return least
}

// podsOnNode counts the pods bound to the node that have not ended.
func podsOnNode(ctx context.Context) (int, error) {
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", testEnv.nodeName).String()})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range list.Items {
		if p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
			n++
		}
	}
	return n, nil
}

// podLeftovers lists what the node still holds of the pods with those
// UIDs, deleted: CRI sandboxes and containers, pod directories, mounts.
func podLeftovers(t *testing.T, uids map[types.UID]bool) []string {
	t.Helper()
	ctx := context.Background()
	rs := criClient(t)
	var out []string
	sbs, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatalf("list CRI sandboxes: %v", err)
	}
	for _, sb := range sbs {
		if uids[types.UID(sb.GetLabels()[podUIDLabel])] {
			out = append(out, fmt.Sprintf("sandbox %.12s of pod %s (%s)", sb.Id, sb.GetMetadata().GetName(), sb.State))
		}
	}
	cs, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{})
	if err != nil {
		t.Fatalf("list CRI containers: %v", err)
	}
	for _, c := range cs {
		if uids[types.UID(c.GetLabels()[podUIDLabel])] {
			out = append(out, fmt.Sprintf("container %.12s %s of pod uid %s (%s)", c.Id, c.GetMetadata().GetName(), c.GetLabels()[podUIDLabel], c.State))
		}
	}
	for uid := range uids {
		dir := filepath.Join(rootDir(), "pods", string(uid))
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			out = append(out, "directory "+dir)
		}
		for _, m := range mountsUnder(t, dir) {
			out = append(out, "mount "+m)
		}
	}
	return out
}

// TestChaosPodChurn creates and deletes scale.ChurnCycles pods,
// scale.ChurnParallel at a time, beside a few pods that stay. Then the
// agent's queue drains, it tracks only the live pods, and nothing of the
// churned pods is left on the node. Figures: the RSS growth across the
// churn (after a warm-up), the queue length at the end and the CRI calls
// per minute once idle.
func TestChaosPodChurn(t *testing.T) {
	scale := chaos(t)
	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	pid := a.cmd.Process.Pid
	ctx := context.Background()
	fc := fastClient(t)

	for _, name := range []string{"live-0", "live-1"} {
		createPod(t, sharedAppPod(ns, name))
	}
	for _, name := range []string{"live-0", "live-1"} {
		waitPod(t, ns, name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	}

	var (
		mu   sync.Mutex
		uids = map[types.UID]bool{}
	)
	created := func(uid types.UID) {
		mu.Lock()
		uids[uid] = true
		mu.Unlock()
	}
	run := func(from, to int) {
		t.Helper()
		if errs := churn(fc, ns, from, to, scale.ChurnParallel, created); len(errs) > 0 {
			t.Fatalf("%d churn cycle(s) failed; the first: %v", len(errs), errs[0])
		}
	}
	warm := max(scale.ChurnCycles/10, scale.ChurnParallel)
	run(0, warm)

	fams := agentMetrics(t)
	hasQueue := metricPresent(fams, queueDepthMetric, "name=pod_workers")
	hasTracked := metricPresent(fams, trackedPodsMetric)
	hasCRIOps := metricPresent(fams, criOpsMetric)
	for name, ok := range map[string]bool{queueDepthMetric + `{name="pod_workers"}`: hasQueue, trackedPodsMetric: hasTracked, criOpsMetric: hasCRIOps} {
		if !ok {
			t.Logf("the agent has no metric %s: its figure is -1 and its check skipped", name)
		}
	}
	// drained waits for an empty pod sync queue and the tracked pods back
	// to the node's live pods.
	drained := func(what string) {
		t.Helper()
		if !hasQueue && !hasTracked {
			return
		}
		waitFor(t, what, 30*time.Second, func(ctx context.Context) (bool, error) {
			fams := agentMetrics(t)
			if depth := metricSum(fams, queueDepthMetric, "name=pod_workers"); hasQueue && depth != 0 {
				return false, fmt.Errorf("queue length %v", depth)
			}
			live, err := podsOnNode(ctx)
			if err != nil {
				return false, err
			}
			if tracked := metricSum(fams, trackedPodsMetric); hasTracked && int(tracked) != live {
				return false, fmt.Errorf("the agent tracks %v pods, %d live on the node", tracked, live)
			}
			return true, nil
		})
	}
	drained("the agent's queue and tracked pods to settle after the warm-up")
	before := settledRSS(t, pid, 5*time.Second, 5)

	started := time.Now()
	run(warm, scale.ChurnCycles)
	took := time.Since(started)
	t.Logf("%d churn cycles (after %d of warm-up) took %s: %.1f cycles/s with %d in parallel",
		scale.ChurnCycles-warm, warm, took.Round(100*time.Millisecond), float64(scale.ChurnCycles-warm)/took.Seconds(), scale.ChurnParallel)
	recordFigure(t, "churn_cycles", scale.ChurnCycles)

	drained("the agent's queue to drain and its tracked pods to come back to the live pods")
	queueLength := -1
	if hasQueue {
		queueLength = int(metricSum(agentMetrics(t), queueDepthMetric, "name=pod_workers"))
	}
	recordFigure(t, "churn_queue_length", queueLength)

	var left []string
	waitFor(t, "nothing of the churned pods left on the node", 60*time.Second, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		left = podLeftovers(t, uids)
		if len(left) > 0 {
			return false, fmt.Errorf("%d left: %s", len(left), strings.Join(left[:min(len(left), 5)], "; "))
		}
		return true, nil
	})

	// Idle: the churned pods gone, the live ones running. The CRI calls
	// across the window, scaled to a minute; the RSS floor in its second
	// half.
	window := 20 * time.Second
	if scale.Name == "full" {
		window = 60 * time.Second
	}
	opsBefore := metricSum(agentMetrics(t), criOpsMetric)
	windowStart := time.Now()
	after := settledRSS(t, pid, window/2, int(window/2/time.Second))
	time.Sleep(max(window-time.Since(windowStart), 0))
	opsAfter := metricSum(agentMetrics(t), criOpsMetric)
	perMin := -1.0
	if hasCRIOps {
		perMin = float64(int((opsAfter-opsBefore)*float64(time.Minute)/float64(time.Since(windowStart))*10)) / 10
	}
	recordFigure(t, "cri_calls_per_min", perMin)

	growth := after - before
	recordFigure(t, "churn_rss_growth_kb", growth)
	t.Logf("agent RSS %d KiB after the warm-up, %d KiB after the churn", before, after)
	if growth > churnRSSWarnKB {
		t.Logf("WARNING: the agent's RSS grew by %d KiB (over %d KiB) across %d pod cycles: a leak?", growth, churnRSSWarnKB, scale.ChurnCycles-warm)
	}

	select {
	case <-a.done:
		t.Fatalf("the agent exited: %v", a.exitErr)
	default:
	}
	if live, err := podsOnNode(ctx); err != nil || live != 2 {
		t.Errorf("%d pods live on the node (err %v), want the test's 2", live, err)
	}
	cleanupPods(t, ns)
}
