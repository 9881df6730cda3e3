package kuberuntime

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
)

// fixedPolicy decides the same for every debug container and counts the
// questions.
type fixedPolicy struct {
	d     debugpolicy.Decision
	asked int
}

func (f *fixedPolicy) Decide(context.Context, *v1.Pod, *v1.EphemeralContainer) (debugpolicy.Decision, error) {
	f.asked++
	return f.d, nil
}

func TestSyncDebugPolicyDenied(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, st, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	policy := &fixedPolicy{d: debugpolicy.Decision{Rule: "prod", Message: `debug policy rule "prod": image not allowed`}}
	s.DebugPolicy = policy
	s.Metrics = NewMetrics(prometheus.NewRegistry())
	for range 3 {
		if _, err := s.SyncPod(ctx, pod.UID); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	if n := len(containersNamed(t, rt, "debugger")); n != 0 {
		t.Fatalf("%d debugger containers, want none: it was denied", n)
	}
	if n := len(containersNamed(t, rt, "app")); n != 1 {
		t.Errorf("%d app containers, want 1", n)
	}
	if policy.asked != 1 {
		t.Errorf("policy asked %d times, want once: a denial is final", policy.asked)
	}
	if ev := eventsWith(rec, debugapi.ReasonPolicyDenied); len(ev) != 1 {
		t.Errorf("%s events = %q, want one", debugapi.ReasonPolicyDenied, ev)
	}
	records, err := s.Records.List(pod.UID)
	if err != nil || records["debugger"].Ended == nil || records["debugger"].Ended.Reason != debugapi.ReasonPolicyDenied || records["debugger"].ContainerID != "" {
		t.Errorf("record = %+v, %v; want the denial, no container", records["debugger"], err)
	}
	if len(st.waiting) != 0 {
		t.Errorf("waiting = %+v, want none: a denial is not a start to retry", st.waiting)
	}
	if n := testutil.ToFloat64(s.Metrics.ended.WithLabelValues(debugapi.ReasonPolicyDenied)); n != 1 {
		t.Errorf("denials counted %v, want 1", n)
	}
	if n := testutil.CollectAndCount(s.Metrics.startErrs); n != 0 {
		t.Errorf("%d start error series, want none: a denial is no start error", n)
	}
}

// configCapture keeps the config each container was created with, by name.
type configCapture struct {
	Runtime
	configs map[string]*runtimeapi.ContainerConfig
}

func (c *configCapture) CreateContainer(ctx context.Context, sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	c.configs[cfg.GetMetadata().GetName()] = cfg
	return c.Runtime.CreateContainer(ctx, sb, cfg, sbCfg)
}

func TestSyncDebugPolicyCaps(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	capture := &configCapture{Runtime: rt, configs: map[string]*runtimeapi.ContainerConfig{}}
	s.Runtime = capture
	cpu, mem := resource.MustParse("250m"), resource.MustParse("64Mi")
	s.DebugPolicy = &fixedPolicy{d: debugpolicy.Decision{Allowed: true, Rule: "dev",
		Resources:   &debugpolicy.Resources{CPU: &cpu, Memory: &mem, Pids: ptr.To[int64](100)},
		MaxDuration: time.Hour, IdleTimeout: 10 * time.Minute}}
	_, _ = s.SyncPod(ctx, pod.UID)
	_, _ = s.SyncPod(ctx, pod.UID)
	dbg := containersNamed(t, rt, "debugger")
	if len(dbg) != 1 {
		t.Fatalf("%d debugger containers, want 1", len(dbg))
	}
	st, err := rt.ContainerStatus(ctx, dbg[0].Id, false)
	if err != nil {
		t.Fatal(err)
	}
	ann := st.Status.Annotations
	for k, want := range map[string]string{
		debugapi.PolicyRuleAnnotation:  "dev",
		debugapi.ResourcesAnnotation:   "cpu=250m,memory=64Mi,pids=100",
		debugapi.MaxDurationAnnotation: "1h0m0s",
		debugapi.IdleTimeoutAnnotation: "10m0s",
	} {
		if ann[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], want)
		}
	}
	res := capture.configs["debugger"].GetLinux().GetResources()
	if res.CpuQuota != 25000 || res.CpuPeriod != 100000 || res.MemoryLimitInBytes != 64<<20 {
		t.Errorf("resources = %+v, want quota 25000/100000 and 64Mi", res)
	}
}

func TestApplyDebugDecision(t *testing.T) {
	tiny := resource.MustParse("1m")
	cfg := &runtimeapi.ContainerConfig{}
	applyDebugDecision(cfg, debugpolicy.Decision{Allowed: true, Rule: "r", Resources: &debugpolicy.Resources{CPU: &tiny}})
	if q := cfg.Linux.Resources.CpuQuota; q != 1000 {
		t.Errorf("quota for 1m = %d, want the kubelet's minimum 1000", q)
	}
	none := &runtimeapi.ContainerConfig{}
	applyDebugDecision(none, debugpolicy.Decision{Allowed: true})
	if none.Annotations != nil || none.Linux != nil {
		t.Errorf("no rule decided, config = %+v, want untouched", none)
	}
}

func TestSyncStopRequested(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod(withEphemeral("debugger", "app"))
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	_, _ = s.SyncPod(ctx, pod.UID)
	_, _ = s.SyncPod(ctx, pod.UID)
	dbg := containersNamed(t, rt, "debugger")
	if len(dbg) != 1 || dbg[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("debugger = %+v, want one running", dbg)
	}
	pod.Annotations = map[string]string{debugapi.StopAnnotation: "debugger"}
	for range 2 {
		_, _ = s.SyncPod(ctx, pod.UID)
	}
	dbg = containersNamed(t, rt, "debugger")
	if len(dbg) != 1 || dbg[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("debugger = %+v, want the one container, exited", dbg)
	}
	if ev := eventsWith(rec, debugapi.ReasonStopRequested); len(ev) != 1 {
		t.Errorf("%s events = %q, want one", debugapi.ReasonStopRequested, ev)
	}
	records, _ := s.Records.List(pod.UID)
	if e := records["debugger"].Ended; e == nil || e.Reason != debugapi.ReasonStopRequested || records["debugger"].ContainerID != dbg[0].Id {
		t.Errorf("record = %+v, want the stop of %s", records["debugger"], dbg[0].Id)
	}
}
