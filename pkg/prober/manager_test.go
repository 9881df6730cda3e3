package prober

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	utilexec "k8s.io/utils/exec"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pst "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// scriptedExec answers each command (joined by spaces) with success or an
// exit 1, as set, and counts the calls.
type scriptedExec struct {
	mu    sync.Mutex
	ok    map[string]bool
	calls map[string]int
}

func newScriptedExec() *scriptedExec {
	return &scriptedExec{ok: map[string]bool{}, calls: map[string]int{}}
}

func (s *scriptedExec) set(cmd string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok[cmd] = ok
}

func (s *scriptedExec) count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
}

func (s *scriptedExec) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := strings.Join(cmd, " ")
	s.calls[c]++
	if s.ok[c] {
		return nil, nil, nil
	}
	return []byte(c + " failed"), nil, utilexec.CodeExitError{Err: errors.New("exit 1"), Code: 1}
}

type harness struct {
	t       *testing.T
	m       *Manager
	rt      *scriptedExec
	clk     *clocktesting.FakeClock
	rec     *record.FakeRecorder
	reg     *prometheus.Registry
	changes chan types.UID
}

func newHarness(t *testing.T) *harness {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	h := &harness{t: t, rt: newScriptedExec(), clk: clocktesting.NewFakeClock(pst.T0.Add(time.Minute)),
		rec: record.NewFakeRecorder(100), reg: prometheus.NewRegistry(), changes: make(chan types.UID, 100)}
	h.m = NewManager(ctx, Options{Runtime: h.rt, Recorder: h.rec, Clock: h.clk, Registerer: h.reg,
		OnChange: func(uid types.UID) { h.changes <- uid }})
	return h
}

// eventually waits up to 5s for cond.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tick advances the clock one probe period once cmd ran n times.
func (h *harness) tick(cmd string, n int) {
	h.t.Helper()
	h.eventually(cmd+" to run", func() bool { return h.rt.count(cmd) >= n })
	h.clk.Step(time.Second)
}

func execProbeSpec(cmd string, failureThreshold int32) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: strings.Fields(cmd)}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: failureThreshold}
}

func podWith(mutate func(c *v1.Container)) *v1.Pod {
	return pst.Pod(func(p *v1.Pod) { mutate(&p.Spec.Containers[0]) })
}

func running(id string, attempt int) *podstate.PodState {
	return pst.State([]podstate.Sandbox{pst.ReadySandbox("sb1", 0)}, pst.Ctr(id, "sb1", pst.Regular, "app", pst.Running, attempt, 0))
}

func TestNoProbesIsReadyAtOnce(t *testing.T) {
	h := newHarness(t)
	got := h.m.UpdatePod(podWith(func(*v1.Container) {}), running("c1", 0))
	if got["c1"] != (podstate.Probed{Started: true, Ready: true}) {
		t.Errorf("UpdatePod = %+v, want started and ready", got)
	}
	if !h.m.Ready("c1") || !h.m.Started("c1") || h.m.Ready("other") {
		t.Error("Ready/Started disagree with UpdatePod")
	}
}

func TestReadiness(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) { c.ReadinessProbe = execProbeSpec("ready", 1) })
	got := h.m.UpdatePod(pod, running("c1", 0))
	if got["c1"] != (podstate.Probed{Started: true}) {
		t.Fatalf("before any success: %+v, want started, not ready", got["c1"])
	}
	h.tick("ready", 1)
	h.rt.set("ready", true)
	h.tick("ready", 2)
	h.eventually("ready", func() bool { return h.m.Ready("c1") })
	if uid := <-h.changes; uid != pod.UID {
		t.Errorf("OnChange(%s), want %s", uid, pod.UID)
	}
	if got := h.m.UpdatePod(pod, running("c1", 0)); !got["c1"].Ready {
		t.Errorf("UpdatePod = %+v, want ready", got)
	}
	h.rt.set("ready", false)
	h.eventually("not ready again", func() bool { h.clk.Step(time.Second); return !h.m.Ready("c1") })
	if n := testutil.ToFloat64(h.m.metrics.total.WithLabelValues("Readiness", resultFailure, "app", "app", "default")); n < 2 {
		t.Errorf("prober_probe_total failed = %v, want >= 2", n)
	}
	if ev := <-h.rec.Events; !strings.HasPrefix(ev, "Warning Unhealthy Readiness probe failed: ready failed") {
		t.Errorf("event %q", ev)
	}
}

func TestLivenessFailureAndRestart(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) { c.LivenessProbe = execProbeSpec("live", 2) })
	if got := h.m.UpdatePod(pod, running("c1", 0)); got["c1"] != (podstate.Probed{Started: true, Ready: true}) {
		t.Fatalf("UpdatePod = %+v", got)
	}
	h.tick("live", 1)
	h.eventually("liveness failure", func() bool { failed, _ := h.m.LivenessFailed("c1"); return failed })
	if _, msg := h.m.LivenessFailed("c1"); msg != "live failed" {
		t.Errorf("message %q", msg)
	}
	if got := h.m.UpdatePod(pod, running("c1", 0)); got["c1"].Failed != podstate.Liveness {
		t.Errorf("UpdatePod = %+v, want Failed Liveness", got)
	}
	// Once failed, the worker stops: no more probes of that container.
	n := h.rt.count("live")
	h.clk.Step(5 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if h.rt.count("live") != n {
		t.Error("a container that failed liveness is still probed")
	}
	// The restarted container (new ID) is healthy and probed afresh; the
	// old one is forgotten.
	h.rt.set("live", true)
	got := h.m.UpdatePod(pod, running("c2", 1))
	if _, ok := got["c1"]; ok || got["c2"] != (podstate.Probed{Started: true, Ready: true}) {
		t.Errorf("after restart: %+v", got)
	}
	h.eventually("the new container probed", func() bool { return h.rt.count("live") > n })
	if failed, _ := h.m.LivenessFailed("c1"); failed {
		t.Error("the old container's verdict outlived it")
	}
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) {
		c.StartupProbe = execProbeSpec("startup", 10)
		c.LivenessProbe = execProbeSpec("live", 1)
		c.ReadinessProbe = execProbeSpec("ready", 1)
	})
	h.rt.set("ready", true)
	if got := h.m.UpdatePod(pod, running("c1", 0)); got["c1"] != (podstate.Probed{}) {
		t.Fatalf("UpdatePod = %+v, want not started", got)
	}
	h.tick("startup", 1)
	h.tick("startup", 2)
	if h.rt.count("live") != 0 || h.rt.count("ready") != 0 {
		t.Fatal("liveness or readiness probed before the startup probe succeeded")
	}
	h.rt.set("startup", true)
	h.rt.set("live", true)
	h.tick("startup", 3)
	h.eventually("started", func() bool { return h.m.Started("c1") })
	h.eventually("liveness and readiness probed", func() bool {
		h.clk.Step(time.Second)
		return h.rt.count("live") > 0 && h.rt.count("ready") > 0
	})
	h.eventually("ready", func() bool { h.clk.Step(time.Second); return h.m.Ready("c1") })
}

func TestStartupFailure(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) { c.StartupProbe = execProbeSpec("startup", 2) })
	h.m.UpdatePod(pod, running("c1", 0))
	h.tick("startup", 1)
	h.eventually("startup failure", func() bool { return h.m.UpdatePod(pod, running("c1", 0))["c1"].Failed == podstate.Startup })
}

func TestInitialDelay(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) {
		c.ReadinessProbe = execProbeSpec("ready", 1)
		c.ReadinessProbe.InitialDelaySeconds = 5
	})
	st := running("c1", 0)
	st.Containers[0].StartedAt = h.clk.Now()
	h.m.UpdatePod(pod, st)
	for range 4 {
		time.Sleep(10 * time.Millisecond)
		h.clk.Step(time.Second)
	}
	time.Sleep(20 * time.Millisecond)
	if n := h.rt.count("ready"); n != 0 {
		t.Fatalf("probed %d times within the initial delay", n)
	}
	h.eventually("a probe after the delay", func() bool { h.clk.Step(time.Second); return h.rt.count("ready") > 0 })
}

func TestStoppedContainersAndForgetPod(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) { c.ReadinessProbe = execProbeSpec("ready", 1) })
	h.m.UpdatePod(pod, running("c1", 0))
	h.eventually("probed", func() bool { return h.rt.count("ready") > 0 })
	exited := pst.State([]podstate.Sandbox{pst.ReadySandbox("sb1", 0)}, pst.Ctr("c1", "sb1", pst.Regular, "app", pst.Exited, 0, 1))
	if got := h.m.UpdatePod(pod, exited); len(got) != 0 {
		t.Errorf("exited container still reported: %+v", got)
	}
	if len(h.m.byID) != 0 || len(h.m.pods) != 0 {
		t.Errorf("entries left: %v %v", h.m.byID, h.m.pods)
	}
	n := h.rt.count("ready")
	h.m.UpdatePod(pod, running("c2", 1))
	h.eventually("the new container probed", func() bool { return h.rt.count("ready") > n })
	h.m.ForgetPod(pod.UID)
	if len(h.m.byID) != 0 || len(h.m.pods) != 0 {
		t.Errorf("entries left after ForgetPod: %v %v", h.m.byID, h.m.pods)
	}
	if n, _ := testutil.GatherAndCount(h.reg, "prober_probe_total"); n != 0 {
		t.Errorf("%d series left after ForgetPod", n)
	}
}

func TestStartedBeforeAnAgentRestart(t *testing.T) {
	h := newHarness(t)
	pod := podWith(func(c *v1.Container) { c.StartupProbe = execProbeSpec("startup", 1) })
	started := true
	pod.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", ContainerID: "containerd://c1", Started: &started}}
	if got := h.m.UpdatePod(pod, running("c1", 0)); !got["c1"].Started {
		t.Errorf("UpdatePod = %+v, want started as the API says", got)
	}
	// Another instance is not.
	if got := h.m.UpdatePod(pod, running("c2", 1)); got["c2"].Started {
		t.Errorf("UpdatePod = %+v, want a new instance not started", got)
	}
}
