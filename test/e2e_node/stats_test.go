//go:build e2e

package e2enode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// TestStats reads the agent's Summary API and resource metrics through the
// API server's node proxy, as monitoring does, then runs metrics-server
// (the manifest hack/cluster.sh deploys for make run) and checks that
// kubectl top pod and kubectl top node give numbers.
func TestStats(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	// A little CPU in bursts: enough to measure, little enough for a
	// two-core machine running the whole suite.
	burn := []string{"sh", "-c", "while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.2; done"}
	pod := createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: ns},
		Spec: v1.PodSpec{
			Containers: []v1.Container{
				{Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: burn,
					VolumeMounts: []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}},
				{Name: "sidecar", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}},
			},
			Volumes: []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
	})
	waitPod(t, ns, pod.Name, "running", 60*time.Second, podReady)
	addEphemeral(t, pod, debugContainer("debugger", "app", "sleep", "3600"))
	waitPod(t, ns, pod.Name, "debugger running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "debugger")
		return s != nil && s.State.Running != nil
	})
	mustKubectl(t, "-n", ns, "exec", pod.Name, "-c", "app", "--", "dd", "if=/dev/zero", "of=/scratch/blob", "bs=1024", "count=256")

	proxy := "/api/v1/nodes/" + testEnv.nodeName + "/proxy"
	var summary statsapi.Summary
	var busy *statsapi.PodStats
	waitFor(t, "the summary to show the pod's CPU rate", 60*time.Second, func(_ context.Context) (bool, error) {
		out, err := kubectl(t, "get", "--raw", proxy+"/stats/summary")
		if err != nil {
			t.Logf("summary: %v: %s", err, out)
			return false, nil
		}
		summary = statsapi.Summary{}
		if err := json.Unmarshal([]byte(out), &summary); err != nil {
			return false, fmt.Errorf("summary is no JSON: %w", err)
		}
		busy = findPodStats(summary, ns, pod.Name)
		return busy != nil && busy.CPU != nil && busy.CPU.UsageNanoCores != nil && *busy.CPU.UsageNanoCores > 0, nil
	})
	n := summary.Node
	if n.NodeName != testEnv.nodeName || n.CPU == nil || n.Memory == nil || statsValue(n.Memory.WorkingSetBytes) == 0 ||
		statsValue(n.CPU.UsageCoreNanoSeconds) == 0 || n.Fs == nil || statsValue(n.Fs.CapacityBytes) == 0 ||
		n.Runtime == nil || n.Runtime.ImageFs == nil || statsValue(n.Runtime.ImageFs.UsedBytes) == 0 || n.Rlimit == nil {
		t.Errorf("node stats incomplete: %s", statsJSON(n))
	}
	if string(pod.UID) != busy.PodRef.UID {
		t.Errorf("podRef = %+v, want UID %s", busy.PodRef, pod.UID)
	}
	got := map[string]statsapi.ContainerStats{}
	for _, c := range busy.Containers {
		got[c.Name] = c
	}
	for _, name := range []string{"app", "sidecar", "debugger"} {
		c, ok := got[name]
		if !ok || c.CPU == nil || statsValue(c.CPU.UsageCoreNanoSeconds) == 0 || c.Memory == nil || statsValue(c.Memory.WorkingSetBytes) == 0 {
			t.Errorf("container %s: %s, want nonzero CPU and memory", name, statsJSON(c))
		}
	}
	if app := got["app"]; app.Rootfs == nil || app.Logs == nil {
		t.Errorf("app's rootfs and logs missing: %s", statsJSON(app))
	}
	if busy.Memory == nil || statsValue(busy.Memory.WorkingSetBytes) == 0 || busy.Network == nil || busy.Network.Name != "eth0" {
		t.Errorf("pod memory %s network %s, want a working set and eth0", statsJSON(busy.Memory), statsJSON(busy.Network))
	}
	var scratch *statsapi.VolumeStats
	for i := range busy.VolumeStats {
		if busy.VolumeStats[i].Name == "scratch" {
			scratch = &busy.VolumeStats[i]
		}
	}
	if scratch == nil || statsValue(scratch.UsedBytes) < 256*1024 {
		t.Errorf("volumes = %s, want scratch with the 256 KiB written to it", statsJSON(busy.VolumeStats))
	}
	if busy.EphemeralStorage == nil || statsValue(busy.EphemeralStorage.UsedBytes) < 256*1024 {
		t.Errorf("ephemeral storage = %s, want at least the emptyDir's", statsJSON(busy.EphemeralStorage))
	}

	out := mustKubectl(t, "get", "--raw", proxy+"/stats/summary?only_cpu_and_memory=true")
	var only statsapi.Summary
	if err := json.Unmarshal([]byte(out), &only); err != nil || only.Node.Fs != nil || only.Node.CPU == nil {
		t.Errorf("only_cpu_and_memory: %v, node %s", err, statsJSON(only.Node))
	}
	metrics := mustKubectl(t, "get", "--raw", proxy+"/metrics/resource")
	for _, want := range []string{
		fmt.Sprintf(`container_cpu_usage_seconds_total{container="app",namespace="%s",pod="busy"}`, ns),
		fmt.Sprintf(`container_memory_working_set_bytes{container="debugger",namespace="%s",pod="busy"}`, ns),
		fmt.Sprintf(`container_start_time_seconds{container="sidecar",namespace="%s",pod="busy"}`, ns),
		fmt.Sprintf(`pod_cpu_usage_seconds_total{namespace="%s",pod="busy"}`, ns),
		fmt.Sprintf(`pod_memory_working_set_bytes{namespace="%s",pod="busy"}`, ns),
		"node_cpu_usage_seconds_total ", "node_memory_working_set_bytes ", "resource_scrape_error 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics/resource has no %s", want)
		}
	}

	deployMetricsServer(t)
	var top string
	waitFor(t, "kubectl top pod", 120*time.Second, func(_ context.Context) (bool, error) {
		var err error
		top, err = kubectl(t, "-n", ns, "top", "pod", pod.Name, "--containers", "--no-headers")
		return err == nil, nil
	})
	// POD NAME CPU(cores) MEMORY(bytes), a line per container.
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(top), "\n") {
		if f := strings.Fields(l); len(f) == 4 {
			lines[f[1]] = f
		}
	}
	for _, name := range []string{"app", "sidecar", "debugger"} {
		if f, ok := lines[name]; !ok || !strings.HasSuffix(f[2], "m") || !strings.HasSuffix(f[3], "Mi") {
			t.Errorf("kubectl top pod --containers has no figures for %s:\n%s", name, top)
		}
	}
	topNode := mustKubectl(t, "top", "node", testEnv.nodeName, "--no-headers")
	if f := strings.Fields(topNode); len(f) < 5 || f[0] != testEnv.nodeName || !strings.HasSuffix(f[1], "m") || !strings.HasSuffix(f[3], "Mi") {
		t.Errorf("kubectl top node = %q", topNode)
	}
}

// deployMetricsServer applies hack/manifests/metrics-server.yaml for this
// environment and removes it when the test ends, before the agent stops, so
// that no unavailable metrics.k8s.io API is left to later tests' discovery.
func deployMetricsServer(t *testing.T) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "hack", "manifests", "metrics-server.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.NewReplacer("@APISERVER_PORT@", os.Getenv("EA_APISERVER_PORT"),
		"@METRICS_SERVER_PORT@", os.Getenv("EA_METRICS_SERVER_PORT")).Replace(string(raw))
	path := filepath.Join(t.TempDir(), "metrics-server.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := kubectl(t, "delete", "--ignore-not-found", "--wait=true", "-f", path); err != nil {
			t.Errorf("delete metrics-server: %v\n%s", err, out)
		}
		if out, err := kubectl(t, "-n", "kube-system", "wait", "--for=delete", "pod", "-l", "k8s-app=metrics-server", "--timeout=60s"); err != nil {
			t.Errorf("metrics-server's pod not gone: %v\n%s", err, out)
		}
	})
	mustKubectl(t, "apply", "-f", path)
}

func findPodStats(s statsapi.Summary, ns, name string) *statsapi.PodStats {
	for i := range s.Pods {
		if s.Pods[i].PodRef.Namespace == ns && s.Pods[i].PodRef.Name == name {
			return &s.Pods[i]
		}
	}
	return nil
}

func statsValue(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func statsJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
