//go:build e2e

package e2enode

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// agentCgroupRoot is the --cgroup-root the environment gives the agent.
func agentCgroupRoot() string {
	for i, a := range testEnv.agentArgs {
		if a == "--cgroup-root" && i+1 < len(testEnv.agentArgs) {
			return testEnv.agentArgs[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--cgroup-root="); ok {
			return v
		}
	}
	return "/"
}

// cgroupV2 is true on a unified hierarchy.
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// hostCgroupFile reads a file of a cgroup (cgroupfs path) on the host; on
// cgroup v1 from the controller's hierarchy.
func hostCgroupFile(t *testing.T, controller, cgroup, file string) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup", cgroup)
	if !cgroupV2() {
		dir = filepath.Join("/sys/fs/cgroup", controller, cgroup)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read host cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func resources(cpuReq, memReq, cpuLim, memLim string) v1.ResourceRequirements {
	list := func(cpu, mem string) v1.ResourceList {
		l := v1.ResourceList{}
		if cpu != "" {
			l[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[v1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	return v1.ResourceRequirements{Requests: list(cpuReq, memReq), Limits: list(cpuLim, memLim)}
}

func sleeper(ns, name string, res v1.ResourceRequirements) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []v1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command: []string{"sleep", "3600"}, Resources: res}},
		},
	}
}

// TestPodCgroups runs a Guaranteed, a Burstable and a BestEffort pod and
// reads their cgroups from the host and from inside: each pod in a cgroup
// of its own under its QoS tier, with the pod's limits, its containers and
// a debug container below it, and the cgroup gone with the pod.
func TestPodCgroups(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	root := strings.TrimSuffix(agentCgroupRoot(), "/")

	type want struct {
		tier                          string
		shares, quota, memory, weight string
	}
	cases := map[string]struct {
		res  v1.ResourceRequirements
		qos  v1.PodQOSClass
		want want
	}{
		"guaranteed": {resources("200m", "64Mi", "200m", "64Mi"), v1.PodQOSGuaranteed,
			want{"/kubepods", "204", "20000", "67108864", "29"}},
		"burstable": {resources("100m", "32Mi", "500m", "128Mi"), v1.PodQOSBurstable,
			want{"/kubepods/burstable", "102", "50000", "134217728", "17"}},
		"besteffort": {v1.ResourceRequirements{}, v1.PodQOSBestEffort,
			want{"/kubepods/besteffort", "2", "", "", "1"}},
	}
	for name, tc := range cases {
		createPod(t, sleeper(ns, name, tc.res))
	}
	pods := map[string]*v1.Pod{}
	for name := range cases {
		pods[name] = waitPod(t, ns, name, "Running", 90*time.Second, phaseIs(v1.PodRunning))
	}

	for name, tc := range cases {
		pod := pods[name]
		if pod.Status.QOSClass != tc.qos {
			t.Fatalf("%s: QoS class %s", name, pod.Status.QOSClass)
		}
		cgroup := root + tc.want.tier + "/pod" + string(pod.UID)
		// From the host.
		if cgroupV2() {
			if got := hostCgroupFile(t, "cpu", cgroup, "cpu.weight"); got != tc.want.weight {
				t.Errorf("%s: cpu.weight = %s, want %s", name, got, tc.want.weight)
			}
			if tc.want.memory != "" {
				if got := hostCgroupFile(t, "memory", cgroup, "memory.max"); got != tc.want.memory {
					t.Errorf("%s: memory.max = %s, want %s", name, got, tc.want.memory)
				}
				if got := hostCgroupFile(t, "cpu", cgroup, "cpu.max"); got != tc.want.quota+" 100000" {
					t.Errorf("%s: cpu.max = %s, want %s 100000", name, got, tc.want.quota)
				}
			}
		} else {
			if got := hostCgroupFile(t, "cpu", cgroup, "cpu.shares"); got != tc.want.shares {
				t.Errorf("%s: pod cpu.shares = %s, want %s", name, got, tc.want.shares)
			}
			if tc.want.memory != "" {
				if got := hostCgroupFile(t, "memory", cgroup, "memory.limit_in_bytes"); got != tc.want.memory {
					t.Errorf("%s: pod memory.limit_in_bytes = %s, want %s", name, got, tc.want.memory)
				}
				if got := hostCgroupFile(t, "cpu", cgroup, "cpu.cfs_quota_us"); got != tc.want.quota {
					t.Errorf("%s: pod cpu.cfs_quota_us = %s, want %s", name, got, tc.want.quota)
				}
			}
		}
		t.Logf("%s: pod cgroup %s", name, cgroup)

		// From inside: on cgroup v1 (no cgroup namespace) the container
		// sees its own path, below the pod's.
		self := mustKubectl(t, "-n", ns, "exec", name, "--", "cat", "/proc/self/cgroup")
		if !cgroupV2() && !strings.Contains(self, ":memory:"+cgroup+"/") {
			t.Errorf("%s: /proc/self/cgroup inside is not below %s:\n%s", name, cgroup, self)
		}
		// The container's own limit, in the cgroup files it sees.
		if name == "burstable" && !cgroupV2() {
			if got := strings.TrimSpace(mustKubectl(t, "-n", ns, "exec", name, "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")); got != "134217728" {
				t.Errorf("memory.limit_in_bytes inside = %s", got)
			}
		}
	}

	// A debug container joins the pod's sandbox, whose parent is the pod
	// cgroup: its processes are inside it.
	burstable := pods["burstable"]
	addEphemeral(t, burstable, debugContainer("debugger", "app", "cat", "/proc/self/cgroup"))
	got := waitPod(t, ns, burstable.Name, "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	if s := ephemeralStatus(got, "debugger"); s.State.Terminated.ExitCode != 0 {
		t.Errorf("debugger: %+v", s.State.Terminated)
	}
	logs := mustKubectl(t, "-n", ns, "logs", burstable.Name, "-c", "debugger")
	podCgroup := root + "/kubepods/burstable/pod" + string(burstable.UID)
	if cgroupV2() {
		// A private cgroup namespace hides the path; the host shows the
		// debugger's cgroup below the pod's.
		t.Logf("debugger's /proc/self/cgroup: %s", logs)
	} else if !strings.Contains(logs, ":memory:"+podCgroup+"/") || !strings.Contains(logs, ":cpu,cpuacct:"+podCgroup+"/") && !strings.Contains(logs, ":cpu:"+podCgroup+"/") {
		t.Errorf("the debugger's processes are not in the pod cgroup %s:\n%s", podCgroup, logs)
	}

	// Deleted, each pod's cgroup goes with it.
	for name, tc := range cases {
		if err := client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := pods[name]
		waitPodGone(t, ns, name, 60*time.Second)
		dir := filepath.Join("/sys/fs/cgroup", root+tc.want.tier, "pod"+string(pod.UID))
		if !cgroupV2() {
			dir = filepath.Join("/sys/fs/cgroup", "memory", root+tc.want.tier, "pod"+string(pod.UID))
		}
		waitFor(t, name+"'s pod cgroup to be removed", 30*time.Second, func(context.Context) (bool, error) {
			_, err := os.Stat(dir)
			return errors.Is(err, os.ErrNotExist), nil
		})
	}
}

// TestSystemdDriverWithoutSystemd: the systemd driver on a machine without
// systemd stops the agent at start with a clear error.
func TestSystemdDriverWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs on this machine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append([]string{}, testEnv.agentArgs...), "--cgroup-driver=systemd")
	out, err := exec.CommandContext(ctx, testEnv.agentBinary, args...).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || ctx.Err() != nil {
		t.Fatalf("agent with --cgroup-driver=systemd: %v, want an exit at start\n%s", err, tail(out, 2048))
	}
	if !strings.Contains(string(out), "needs systemd, which does not run on this machine") {
		t.Errorf("the agent's error does not say why:\n%s", tail(out, 2048))
	}
}
