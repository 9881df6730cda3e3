package kuberuntime

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
)

// fakeCgroups records what the sync loop asks of the pod cgroups.
type fakeCgroups struct {
	ensured []types.UID
	removed []types.UID
	err     error
}

func (f *fakeCgroups) EnsurePod(_ context.Context, pod *v1.Pod) (string, error) {
	f.ensured = append(f.ensured, pod.UID)
	return "/kubepods/burstable/pod" + string(pod.UID), f.err
}

func (f *fakeCgroups) RemovePod(_ context.Context, uid types.UID) error {
	f.removed = append(f.removed, uid)
	return nil
}

// sandboxConfigs keeps the configs sandboxes are run with.
type sandboxConfigs struct {
	Runtime
	configs []*runtimeapi.PodSandboxConfig
}

func (r *sandboxConfigs) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	r.configs = append(r.configs, cfg)
	return r.Runtime.RunPodSandbox(ctx, cfg, handler)
}

func TestSyncPodCgroup(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, _ := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	cg := &fakeCgroups{}
	s.Cgroups = cg
	runs := &sandboxConfigs{Runtime: rt}
	s.Runtime = runs
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(cg.ensured) == 0 || cg.ensured[0] != pod.UID {
		t.Fatalf("pod cgroup ensured for %v, want the pod before its sandbox", cg.ensured)
	}
	if len(runs.configs) != 1 {
		t.Fatalf("%d sandboxes run, want 1", len(runs.configs))
	}
	if got := runs.configs[0].GetLinux().GetCgroupParent(); got != "/kubepods/burstable/pod"+string(pod.UID) {
		t.Errorf("sandbox cgroup_parent = %q", got)
	}

	// Gone from the API: the cgroup goes after the sandbox.
	s.Pods = fakePods{}
	if _, err := s.SyncPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if left, _ := rt.ListPodSandbox(ctx, nil); len(left) != 0 {
		t.Errorf("%d sandboxes left", len(left))
	}
	if len(cg.removed) != 1 || cg.removed[0] != pod.UID {
		t.Errorf("removed cgroups %v, want the pod's", cg.removed)
	}
}

func TestSyncPodCgroupFailureCreatesNoSandbox(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pod := testPod()
	s, rt, _, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
	s.Cgroups = &fakeCgroups{err: errors.New("no memory controller")}
	if _, err := s.SyncPod(ctx, pod.UID); err == nil {
		t.Fatal("sync succeeded without the pod's cgroup")
	}
	if sb, _ := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{}); len(sb) != 0 {
		t.Errorf("%d sandboxes created without the pod's cgroup", len(sb))
	}
	if ev := eventsWith(rec, "FailedCreatePodContainer"); len(ev) != 1 || ev[0] != "Warning FailedCreatePodContainer unable to ensure pod container exists: no memory controller" {
		t.Errorf("events = %q", ev)
	}
}
