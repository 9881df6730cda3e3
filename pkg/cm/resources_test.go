package cm

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func rl(pairs ...string) v1.ResourceList {
	l := v1.ResourceList{}
	for i := 0; i < len(pairs); i += 2 {
		l[v1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return l
}

func ctr(req, lim v1.ResourceList) v1.Container {
	return v1.Container{Name: "c", Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}
}

func podWith(qos v1.PodQOSClass, containers ...v1.Container) *v1.Pod {
	return &v1.Pod{Spec: v1.PodSpec{Containers: containers}, Status: v1.PodStatus{QOSClass: qos}}
}

func TestPodResourceConfig(t *testing.T) {
	mi := int64(1 << 20)
	withOverhead := podWith(v1.PodQOSGuaranteed, ctr(rl("cpu", "500m", "memory", "64Mi"), rl("cpu", "500m", "memory", "64Mi")))
	withOverhead.Spec.Overhead = rl("cpu", "100m", "memory", "16Mi")
	podLevel := podWith(v1.PodQOSBurstable, ctr(rl("cpu", "100m"), nil), ctr(nil, nil))
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: rl("cpu", "1"), Limits: rl("cpu", "2", "memory", "256Mi")}
	withInit := podWith(v1.PodQOSBurstable, ctr(rl("cpu", "100m"), rl("cpu", "200m", "memory", "32Mi")))
	withInit.Spec.InitContainers = []v1.Container{ctr(nil, rl("memory", "64Mi"))}

	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		pids int64
		want ResourceConfig
	}{
		{"besteffort: minimum shares only", podWith(v1.PodQOSBestEffort, ctr(nil, nil)), 0,
			ResourceConfig{CPUShares: ptr.To[uint64](2)}},
		{"besteffort with pod-max-pids", podWith(v1.PodQOSBestEffort, ctr(nil, nil)), 1024,
			ResourceConfig{CPUShares: ptr.To[uint64](2), PidsLimit: ptr.To[int64](1024)}},
		{"guaranteed: sums of the limits", podWith(v1.PodQOSGuaranteed,
			ctr(rl("cpu", "250m", "memory", "64Mi"), rl("cpu", "250m", "memory", "64Mi")),
			ctr(rl("cpu", "1", "memory", "32Mi"), rl("cpu", "1", "memory", "32Mi"))), 0,
			ResourceConfig{CPUShares: ptr.To[uint64](1280), CPUQuota: ptr.To[int64](125000), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(96 * mi)}},
		{"guaranteed with overhead", withOverhead, 0,
			ResourceConfig{CPUShares: ptr.To[uint64](614), CPUQuota: ptr.To[int64](60000), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(80 * mi)}},
		{"burstable, every container limited", podWith(v1.PodQOSBurstable,
			ctr(rl("cpu", "100m", "memory", "16Mi"), rl("cpu", "500m", "memory", "128Mi"))), 0,
			ResourceConfig{CPUShares: ptr.To[uint64](102), CPUQuota: ptr.To[int64](50000), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(128 * mi)}},
		{"burstable, one container without limits: shares only", podWith(v1.PodQOSBurstable,
			ctr(rl("cpu", "100m"), rl("cpu", "500m", "memory", "128Mi")), ctr(nil, nil)), 0,
			ResourceConfig{CPUShares: ptr.To[uint64](102)}},
		{"burstable, memory limited everywhere, cpu not", podWith(v1.PodQOSBurstable,
			ctr(rl("memory", "16Mi"), rl("memory", "64Mi")), ctr(nil, rl("memory", "64Mi"))), 0,
			ResourceConfig{CPUShares: ptr.To[uint64](2), Memory: ptr.To(128 * mi)}},
		{"an init container without a cpu limit", withInit, 0,
			ResourceConfig{CPUShares: ptr.To[uint64](102), Memory: ptr.To(64 * mi)}},
		{"pod-level resources take precedence", podLevel, 0,
			ResourceConfig{CPUShares: ptr.To[uint64](1024), CPUQuota: ptr.To[int64](200000), CPUPeriod: ptr.To[uint64](100000), Memory: ptr.To(256 * mi)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PodResourceConfig(tc.pod, tc.pod.Status.QOSClass, tc.pids)
			if d := diff(got, tc.want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestTierConfigs(t *testing.T) {
	qos := func(p *v1.Pod) v1.PodQOSClass { return p.Status.QOSClass }
	pods := []*v1.Pod{
		podWith(v1.PodQOSBurstable, ctr(rl("cpu", "250m"), nil)),
		podWith(v1.PodQOSBurstable, ctr(rl("cpu", "500m"), rl("cpu", "1"))),
		podWith(v1.PodQOSGuaranteed, ctr(rl("cpu", "2", "memory", "1Gi"), rl("cpu", "2", "memory", "1Gi"))),
		podWith(v1.PodQOSBestEffort, ctr(nil, nil)),
	}
	if d := diff(BurstableConfig(pods, qos), ResourceConfig{CPUShares: ptr.To[uint64](768)}); d != "" {
		t.Errorf("burstable: %s", d)
	}
	if d := diff(BurstableConfig(nil, qos), ResourceConfig{CPUShares: ptr.To[uint64](2)}); d != "" {
		t.Errorf("burstable without pods: %s", d)
	}
	if d := diff(BestEffortConfig(), ResourceConfig{CPUShares: ptr.To[uint64](2)}); d != "" {
		t.Errorf("besteffort: %s", d)
	}
	if d := diff(KubepodsConfig(rl("cpu", "2", "memory", "4Gi", "pid", "4096")),
		ResourceConfig{CPUShares: ptr.To[uint64](2048), Memory: ptr.To[int64](4 << 30), PidsLimit: ptr.To[int64](4096)}); d != "" {
		t.Errorf("kubepods: %s", d)
	}
}

func TestActivePod(t *testing.T) {
	for phase, want := range map[v1.PodPhase]bool{v1.PodPending: true, v1.PodRunning: true, v1.PodSucceeded: false, v1.PodFailed: false} {
		if got := ActivePod(&v1.Pod{Status: v1.PodStatus{Phase: phase}}); got != want {
			t.Errorf("%s: %v", phase, got)
		}
	}
}
