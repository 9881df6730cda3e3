//go:build e2e

// Package e2enode holds the end-to-end tests: they run the real agent binary
// against the real containerd, etcd and control plane that hack/e2e.sh
// starts, and observe it through client-go and plain HTTP, as users would.
//
// The package builds only with -tags e2e, so that go test ./... does not
// report a pass that tested nothing; make e2e (hack/e2e.sh) runs it in its
// environment, and without that environment TestMain fails and says what is
// missing.
package e2enode

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNodeRegistersReady(t *testing.T) {
	// Registration from scratch: no Node object of that name exists.
	err := client.CoreV1().Nodes().Delete(context.Background(), testEnv.nodeName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitFor(t, "the old node to be gone", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	startAgent(t)
	node := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	ready := readyCondition(node)
	if ready.Reason != "KubeletReady" {
		t.Errorf("Ready reason = %q, want KubeletReady", ready.Reason)
	}
	info := node.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("containerRuntimeVersion = %q, want containerd://...", info.ContainerRuntimeVersion)
	}
	if !strings.HasPrefix(info.KubeletVersion, "v1.37.") {
		t.Errorf("kubeletVersion = %q, want the Kubernetes version the agent implements, v1.37.x", info.KubeletVersion)
	}
	if info.OperatingSystem != "linux" || info.KernelVersion == "" || info.BootID == "" {
		t.Errorf("nodeInfo incomplete: %+v", info)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got == 0 || testEnv.agentPort != strconv.Itoa(int(got)) {
		t.Errorf("daemonEndpoints port = %d, want %s", got, testEnv.agentPort)
	}
	var internalIP, hostname bool
	for _, a := range node.Status.Addresses {
		internalIP = internalIP || (a.Type == v1.NodeInternalIP && a.Address == os.Getenv("EA_NODE_IP"))
		hostname = hostname || a.Type == v1.NodeHostName
	}
	if !internalIP || !hostname {
		t.Errorf("addresses = %v, want InternalIP %s and a Hostname", node.Status.Addresses, os.Getenv("EA_NODE_IP"))
	}
	for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
		if q, ok := node.Status.Allocatable[r]; !ok || q.IsZero() {
			t.Errorf("allocatable %s missing or zero: %v", r, node.Status.Allocatable)
		}
	}
	if node.Labels[v1.LabelHostname] == "" || node.Labels[v1.LabelOSStable] != "linux" {
		t.Errorf("labels = %v, want kubernetes.io/hostname and kubernetes.io/os=linux", node.Labels)
	}
}

func TestLeaseRenewed(t *testing.T) {
	startAgent(t)
	node := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	var first metav1.MicroTime
	waitFor(t, "the node lease", 30*time.Second, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != testEnv.nodeName || l.Spec.RenewTime == nil {
			return false, nil
		}
		if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].UID != node.UID {
			t.Errorf("lease owner = %v, want the Node %s (uid %s)", l.OwnerReferences, node.Name, node.UID)
		}
		first = *l.Spec.RenewTime
		return true, nil
	})
	waitFor(t, "the node lease to be renewed", 30*time.Second, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(first.Time), nil
	})
}

func TestReadyFollowsRuntime(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	clusterScript(t, "stop", "containerd")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			clusterScript(t, "start", "containerd")
		}
	})
	node := waitNodeReady(t, v1.ConditionFalse, 60*time.Second)
	ready := readyCondition(node)
	if ready.Reason != "KubeletNotReady" || !strings.Contains(ready.Message, "container runtime is down") {
		t.Errorf("Ready while containerd is stopped = %s/%q, want KubeletNotReady/\"container runtime is down...\"", ready.Reason, ready.Message)
	}
	// /healthz says so too, with the reason, from the same observation.
	if code, body := loopbackHealthz(t); code != http.StatusInternalServerError || !strings.Contains(body, "[-]runtime failed: container runtime is down") {
		t.Errorf("loopback /healthz while containerd is stopped = %d %q, want 500 naming the runtime", code, body)
	}

	clusterScript(t, "start", "containerd")
	restarted = true
	node = waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	if r := readyCondition(node); r.Reason != "KubeletReady" {
		t.Errorf("Ready reason after containerd returned = %q, want KubeletReady", r.Reason)
	}
	if code, body := loopbackHealthz(t); code != http.StatusOK || body != "ok" {
		t.Errorf("loopback /healthz after containerd returned = %d %q, want 200 ok", code, body)
	}
}

// loopbackHealthz returns the plain healthz port's answer.
func loopbackHealthz(t *testing.T) (int, string) {
	t.Helper()
	code, body, err := healthz("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// healthz returns the healthz port's answer to path ("/healthz",
// "/healthz?verbose").
func healthz(path string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + testEnv.healthzPort + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestAgentRestartsCleanly(t *testing.T) {
	a := startAgent(t)
	before := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	if err := a.stop(15 * time.Second); err != nil {
		t.Fatalf("agent exit on SIGTERM = %v, want exit code 0", err)
	}

	// startAgent waits for the new process's own lease renewal.
	startAgent(t)
	after := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	if after.UID != before.UID {
		t.Errorf("node was re-created across the restart: uid %s -> %s", before.UID, after.UID)
	}
}

func TestHealthz(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	resp, err := http.Get("http://127.0.0.1:" + testEnv.healthzPort + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("loopback /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}

	url := "https://127.0.0.1:" + testEnv.agentPort + "/healthz"
	for _, tc := range []struct {
		cert string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"admin", http.StatusOK},
	} {
		resp, err := httpsClient(t, tc.cert).Get(url)
		if err != nil {
			t.Fatalf("GET %s with cert %q: %v", url, tc.cert, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with cert %q = %d, want %d", url, tc.cert, resp.StatusCode, tc.want)
		}
	}
}

// TestNodeStatusMeasured checks what the node reports about itself beyond
// Ready: the Kubernetes version it implements and its own version, the
// pressure conditions, the images a pod used, and allocatable below
// capacity (the hard eviction threshold of memory.available, 100Mi by
// default, is kept from it).
func TestNodeStatusMeasured(t *testing.T) {
	out, err := exec.Command(testEnv.agentBinary, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", testEnv.agentBinary, err)
	}
	agentVersion := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "ephemeral-agent"))
	startAgent(t)
	node := waitNodeReady(t, v1.ConditionTrue, 60*time.Second)

	if v := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(v, "v1.37.") {
		t.Errorf("kubeletVersion = %q, want v1.37.x", v)
	}
	if got := node.Annotations["ephemeral-agent.io/version"]; got == "" || got != agentVersion {
		t.Errorf("annotation ephemeral-agent.io/version = %q, want the agent's version %q", got, agentVersion)
	}
	capMem, allocMem := node.Status.Capacity[v1.ResourceMemory], node.Status.Allocatable[v1.ResourceMemory]
	if allocMem.IsZero() || allocMem.Cmp(capMem) >= 0 {
		t.Errorf("allocatable memory %s, want above zero and below capacity %s", allocMem.String(), capMem.String())
	}

	// Measured, so either state may be true of the machine; the reasons
	// are the kubelet's.
	for typ, reasons := range map[v1.NodeConditionType][]string{
		v1.NodeMemoryPressure: {"KubeletHasSufficientMemory", "KubeletHasInsufficientMemory"},
		v1.NodeDiskPressure:   {"KubeletHasNoDiskPressure", "KubeletHasDiskPressure"},
		v1.NodePIDPressure:    {"KubeletHasSufficientPID", "KubeletHasInsufficientPID"},
	} {
		var c *v1.NodeCondition
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == typ {
				c = &node.Status.Conditions[i]
			}
		}
		if c == nil || !slices.Contains(reasons, c.Reason) {
			t.Errorf("%s condition = %+v, want one with a reason among %v", typ, c, reasons)
		}
	}

	ns := createNamespace(t)
	createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "uses-busybox", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []v1.Container{{Name: "c", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
				Command: []string{"sleep", "3600"}}},
		},
	})
	waitPod(t, ns, "uses-busybox", "Running", 90*time.Second, phaseIs(v1.PodRunning))
	waitFor(t, "status.images to list "+busyboxImage, 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, img := range n.Status.Images {
			if slices.Contains(img.Names, busyboxImage) {
				if img.SizeBytes <= 0 {
					t.Errorf("image %v reported with size %d", img.Names, img.SizeBytes)
				}
				return true, nil
			}
		}
		return false, nil
	})
}
