// Package node measures a node agent (ours or the upstream kubelet) through
// the API server: the time from an update of a pod's ephemeralcontainers
// subresource until a watch sees the debug container Running or Terminated,
// one at a time and many at once, at few and many pods on the node, the
// agent's CPU time over each of these workloads, and its idle CPU and memory
// with many pods.
//
// Pods are bound to the node by spec.nodeName, live in namespaces of the
// run's own and are deleted (and waited for) at the end, also on failure or
// Ctrl-C. A pod holds several debug containers with distinct names, so
// workloads share pods wherever the node's pod count allows.
package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/load"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/stats"
)

// Config is a node run's setup.
type Config struct {
	// Name is the subject: "ours" or "kubelet".
	Name string
	// Node is the node the pods are bound to.
	Node string
	// PID is the node agent's process, for its CPU time per workload and
	// the idle figures (0: skip them).
	PID int
	// Image runs the app and debug containers; it must be on the node.
	Image string
	// Counts are the workload sizes.
	Counts Counts
	// Timeout bounds each wait for one pod or debug container.
	Timeout time.Duration
	// IdleSettle and IdleWindow: the wait before, and the length of, the
	// idle measurement.
	IdleSettle, IdleWindow time.Duration
	// RunID names the run's namespaces and labels its objects.
	RunID string
}

// bench is one run's state.
type bench struct {
	cs  kubernetes.Interface
	cfg Config
	w   *watcher
	// pods counts the run's pods per namespace, created so far.
	pods map[string]int
}

// Run measures every workload and returns the figures.
func Run(ctx context.Context, cs kubernetes.Interface, cfg Config) (res *result.Result, err error) {
	logger := klog.FromContext(ctx)
	started := time.Now()
	if cfg.PID != 0 {
		if err := processExists(cfg.PID); err != nil {
			return nil, err
		}
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, cfg.Node, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", cfg.Node, err)
	}
	if !nodeReady(n) {
		return nil, fmt.Errorf("node %s is not Ready", cfg.Node)
	}
	b := &bench{cs: cs, cfg: cfg, pods: map[string]int{}}
	if err := b.deleteNamespaces(ctx, ""); err != nil {
		return nil, fmt.Errorf("remove an earlier run's namespaces: %w", err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if b.w, err = startWatcher(wctx, cs, RunLabel+"="+cfg.RunID); err != nil {
		return nil, err
	}
	defer func() {
		// The namespaces go even when ctx was cancelled (Ctrl-C).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout+time.Duration(cfg.Counts.ManyPods)*time.Second)
		defer cancel()
		cerr := b.deleteNamespaces(cctx, cfg.RunID)
		switch {
		case cerr == nil:
		case err == nil:
			// The figures are measured: a slow teardown (a node agent
			// deleting 250 pods on a busy machine) must not lose them.
			// What is left goes with the node agent's stop
			// (hack/bench-node.sh), and the environment's teardown checks.
			klog.FromContext(ctx).Error(cerr, "Failed to clean up the bench's pods; the figures are kept")
		default:
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	others, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + cfg.Node})
	if err != nil {
		return nil, fmt.Errorf("list pods on node %s: %w", cfg.Node, err)
	}
	if err := checkCapacity(n, len(others.Items), cfg.Counts.ManyPods); err != nil {
		return nil, err
	}
	logger.Info("Starting", "node", cfg.Node, "otherPods", len(others.Items), "counts", cfg.Counts)

	res = &result.Result{Name: cfg.Name, Image: cfg.Image, Started: started.UTC().Format(time.RFC3339),
		Workloads: map[string]result.Workload{}}
	if err := b.measureAll(ctx, res); err != nil {
		return nil, err
	}
	res.DurationS = time.Since(started).Round(100 * time.Millisecond).Seconds()
	return res, nil
}

// measureAll runs the workloads in an order that keeps the node's pod count
// right for each: few pods, then the one-at-a-time ones, then (in a second
// namespace) the concurrent ones, the idle measurement, and many pods.
func (b *bench) measureAll(ctx context.Context, res *result.Result) error {
	c := b.cfg.Counts
	small := b.cfg.RunID + "-small"
	if err := b.scaleTo(ctx, small, c.FewPods); err != nil {
		return err
	}
	// Four (at scale 1) requests on each of the few pods.
	if err := b.measure(ctx, res, result.FewPodsRunning, small, c.PodCountRequests, 1, running, func(i int) (int, string) {
		return i % c.FewPods, fmt.Sprintf("few-%d", i/c.FewPods)
	}); err != nil {
		return err
	}
	if err := b.scaleTo(ctx, small, c.Sequential); err != nil {
		return err
	}
	for _, w := range []struct {
		name string
		want state
	}{{result.OneRunning, running}, {result.OneTerminated, terminated}} {
		if err := b.measure(ctx, res, w.name, small, c.Sequential, 1, w.want, func(i int) (int, string) {
			return i, "seq-" + strings.ToLower(string(w.want))
		}); err != nil {
			return err
		}
	}
	// The idle figures want pods holding one debug container each: start
	// afresh. The pods must be off the node; the namespace may go later
	// (the final clean-up waits for it).
	if err := b.deletePods(ctx, []string{small}); err != nil {
		return err
	}
	if err := b.cs.CoreV1().Namespaces().Delete(ctx, small, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", small, err)
	}
	delete(b.pods, small)
	main := b.cfg.RunID + "-main"
	if err := b.scaleTo(ctx, main, c.Idle); err != nil {
		return err
	}
	if err := b.measure(ctx, res, result.ConcurrentRunning, main, c.Concurrent, c.InFlight, running, func(i int) (int, string) {
		return i, "conc-running"
	}); err != nil {
		return err
	}
	// The idle pods beyond the measured ones get their debug container too.
	if _, err := load.Run(ctx, c.Idle-c.Concurrent, c.InFlight, func(ctx context.Context, i int) (time.Duration, error) {
		return b.debug(ctx, main, podName(c.Concurrent+i), "conc-running", running)
	}); err != nil {
		return err
	}
	if b.cfg.PID != 0 {
		idle, err := measureIdle(ctx, b.cfg.PID, c.Idle, b.cfg.IdleSettle, b.cfg.IdleWindow)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		res.Idle = idle
		klog.FromContext(ctx).Info("Measured idle cost", "rssMB", idle.RSSMB, "cpuPercent", idle.CPUPercent)
	}
	if err := b.measure(ctx, res, result.ConcurrentTerminated, main, c.Concurrent, c.InFlight, terminated, func(i int) (int, string) {
		return i, "conc-terminated"
	}); err != nil {
		return err
	}
	if err := b.scaleTo(ctx, main, c.ManyPods); err != nil {
		return err
	}
	// The last few pods, fresh ones, get the requests, as many per pod as
	// the few pods got.
	return b.measure(ctx, res, result.ManyPodsRunning, main, c.PodCountRequests, 1, running, func(i int) (int, string) {
		return c.ManyPods - 1 - i%c.FewPods, fmt.Sprintf("many-%d", i/c.FewPods)
	})
}

// measure performs count debug requests, inFlight at once: request i goes
// to the pod and container that target(i) names.
func (b *bench) measure(ctx context.Context, res *result.Result, name, ns string, count, inFlight int, want state, target func(int) (int, string)) error {
	logger := klog.FromContext(ctx)
	logger.Info("Measuring", "workload", name, "requests", count, "inFlight", inFlight, "podsOnNode", b.podCount())
	// The agent's CPU time is read right around the requests: the setup
	// (pods created, settled) stays out of it.
	var cpu0 float64
	if b.cfg.PID != 0 {
		var err error
		if cpu0, err = cpuSeconds(procfs.DefaultMountPoint, b.cfg.PID); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	lat, err := load.Run(ctx, count, inFlight, func(ctx context.Context, i int) (time.Duration, error) {
		pod, container := target(i)
		return b.debug(ctx, ns, podName(pod), container, want)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w := result.Workload{Summary: stats.Summarize(lat), Pods: b.podCount(), InFlight: inFlight}
	if b.cfg.PID != 0 {
		cpu1, err := cpuSeconds(procfs.DefaultMountPoint, b.cfg.PID)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		w.AgentCPUS, w.AgentCPUMsPerRequest = workloadCPU(cpu1-cpu0, count)
	}
	res.Workloads[name] = w
	logger.Info("Measured", "workload", name, "p50Ms", w.P50Ms, "p99Ms", w.P99Ms, "maxMs", w.MaxMs,
		"agentCPUS", w.AgentCPUS, "agentCPUMsPerRequest", w.AgentCPUMsPerRequest)
	return nil
}

// debug adds the ephemeral container to the pod and returns the time from
// just before the successful update to the watch event showing want.
func (b *bench) debug(ctx context.Context, ns, pod, container string, want state) (time.Duration, error) {
	wt := b.w.register(ns, pod, debugReached(container, want))
	defer b.w.forget(ns, pod, wt)
	p := b.w.pod(ns, pod)
	var t0 time.Time
	for attempt := 0; ; attempt++ {
		if p == nil || attempt > 0 {
			var err error
			if p, err = b.cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err != nil {
				return 0, fmt.Errorf("get pod %s/%s: %w", ns, pod, err)
			}
		}
		p = p.DeepCopy()
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, debugContainer(container, b.cfg.Image, want))
		t0 = time.Now()
		_, err := b.cs.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, pod, p, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		// A status patch of the agent may have raced the cached copy.
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return 0, fmt.Errorf("add debug container %s to pod %s/%s: %w", container, ns, pod, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	at, err := b.w.wait(wctx, wt)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return 0, fmt.Errorf("pod %s/%s debug container %s not %s after %v: %s",
				ns, pod, container, want, b.cfg.Timeout, describe(b.w.pod(ns, pod), container))
		}
		return 0, err
	}
	klog.FromContext(ctx).V(4).Info("Reached", "pod", klog.KRef(ns, pod), "container", container, "state", want,
		"updated", t0.UTC().Format(time.RFC3339Nano), "seen", at.UTC().Format(time.RFC3339Nano), "latency", at.Sub(t0))
	return at.Sub(t0), nil
}

// scaleTo creates pods in ns (and ns itself) until it holds n, and waits
// for all of them to run.
func (b *bench) scaleTo(ctx context.Context, ns string, n int) error {
	have, ok := b.pods[ns]
	if !ok {
		if err := b.createNamespace(ctx, ns); err != nil {
			return err
		}
	}
	if n <= have {
		return nil
	}
	logger := klog.FromContext(ctx)
	logger.Info("Creating pods", "namespace", ns, "from", have, "to", n)
	start := time.Now()
	waiters := make([]*waiter, n-have)
	defer func() {
		for i, wt := range waiters {
			if wt != nil {
				b.w.forget(ns, podName(have+i), wt)
			}
		}
	}()
	if _, err := load.Run(ctx, n-have, 10, func(ctx context.Context, i int) (time.Duration, error) {
		name := podName(have + i)
		waiters[i] = b.w.register(ns, name, podRunning)
		if _, err := b.cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, name, b.cfg.Node, b.cfg.Image, b.cfg.RunID), metav1.CreateOptions{}); err != nil {
			return 0, fmt.Errorf("create pod %s/%s: %w", ns, name, err)
		}
		return 0, nil
	}); err != nil {
		return err
	}
	b.pods[ns] = n
	// The node starts pods at its own pace: allow the per-wait timeout plus
	// half a second per pod.
	wctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout+time.Duration(n-have)*500*time.Millisecond)
	defer cancel()
	for i, wt := range waiters {
		if _, err := b.w.wait(wctx, wt); err != nil {
			name := podName(have + i)
			if wctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("pod %s/%s not Running in time: %s", ns, name, describe(b.w.pod(ns, name), ""))
			}
			return fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
	}
	logger.Info("Pods running", "namespace", ns, "count", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (b *bench) podCount() int {
	total := 0
	for _, n := range b.pods {
		total += n
	}
	return total
}

// createNamespace creates ns and waits for its default service account,
// without which pods are refused.
func (b *bench) createNamespace(ctx context.Context, ns string) error {
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, benchNamespace(ns, b.cfg.RunID), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	b.pods[ns] = 0
	return poll(ctx, b.cfg.Timeout, fmt.Sprintf("the default service account of namespace %s", ns), func(ctx context.Context) (bool, error) {
		_, err := b.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// deleteNamespaces deletes the namespaces of run runID ("" for every run)
// and waits until they are gone, so that their pods really left the node.
func (b *bench) deleteNamespaces(ctx context.Context, runID string) error {
	sel := RunLabel
	if runID != "" {
		sel += "=" + runID
	}
	list, err := b.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list bench namespaces: %w", err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	logger := klog.FromContext(ctx)
	start := time.Now()
	names := make([]string, len(list.Items))
	for i, ns := range list.Items {
		names[i] = ns.Name
	}
	// Whatever fails here, the namespaces are still deleted: they take
	// what is left with them.
	var errs []error
	if err := b.deletePods(ctx, names); err != nil {
		errs = append(errs, err)
	} else if err := b.deleteEvents(ctx, names); err != nil {
		errs = append(errs, err)
	}
	pods := 0
	for _, ns := range list.Items {
		pods += b.pods[ns.Name]
		if err := b.cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns.Name, err))
		}
		delete(b.pods, ns.Name)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	logger.Info("Deleting namespaces", "count", len(list.Items), "pods", pods)
	err = poll(ctx, b.cfg.Timeout+time.Duration(pods)*500*time.Millisecond, "the bench namespaces to be gone", func(ctx context.Context) (bool, error) {
		l, err := b.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, err
		}
		return len(l.Items) == 0, nil
	})
	if err == nil {
		logger.Info("Namespaces gone", "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// deletePods deletes the run's pods in the namespaces, many at once, and
// waits until the watch cache lost them all. The namespace controller would
// delete them too, but one by one; and a pod is gone only once the node
// agent confirmed its containers stopped, so the next workload starts on a
// node that holds what it should.
func (b *bench) deletePods(ctx context.Context, nss []string) error {
	if b.w == nil {
		return nil
	}
	var pods []*v1.Pod
	for _, ns := range nss {
		ps, err := b.w.lister.Pods(ns).List(labels.Everything())
		if err != nil {
			return fmt.Errorf("list pods of namespace %s: %w", ns, err)
		}
		pods = append(pods, ps...)
	}
	if len(pods) == 0 {
		return nil
	}
	klog.FromContext(ctx).Info("Deleting pods", "count", len(pods))
	if _, err := load.Run(ctx, len(pods), 20, func(ctx context.Context, i int) (time.Duration, error) {
		p := pods[i]
		if err := b.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return 0, nil
	}); err != nil {
		return err
	}
	// The cache, not the API server, is polled.
	return poll(ctx, b.cfg.Timeout+time.Duration(len(pods))*500*time.Millisecond, "the bench pods to be gone", func(context.Context) (bool, error) {
		for _, ns := range nss {
			if ps, _ := b.w.lister.Pods(ns).List(labels.Everything()); len(ps) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// deleteEvents deletes the namespaces' events, many at once: a run leaves
// thousands, which the namespace controller would delete one by one for
// minutes.
func (b *bench) deleteEvents(ctx context.Context, nss []string) error {
	for _, ns := range nss {
		evs, err := b.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list events of namespace %s: %w", ns, err)
		}
		if _, err := load.Run(ctx, len(evs.Items), 20, func(ctx context.Context, i int) (time.Duration, error) {
			err := b.cs.CoreV1().Events(ns).Delete(ctx, evs.Items[i].Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("delete event %s/%s: %w", ns, evs.Items[i].Name, err)
			}
			return 0, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// poll checks cond every 200 ms until it holds, fails, or timeout passes.
// Only setup and teardown poll; no measured latency does.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

// checkCapacity fails early when the node cannot run the many-pods
// workload: its agent would reject pods beyond its maximum minutes into
// the run.
func checkCapacity(n *v1.Node, others, want int) error {
	q, ok := n.Status.Allocatable[v1.ResourcePods]
	if !ok {
		return nil
	}
	if have := int(q.Value()); have < others+want {
		return fmt.Errorf("node %s runs at most %d pods, %d already there, the bench needs %d more: raise the agent's --max-pods (kubelet: maxPods)",
			n.Name, have, others, want)
	}
	return nil
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
