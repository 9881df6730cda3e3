//go:build e2e

package e2enode

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// kubeReservedCPU makes the node's allocatable differ from its capacity,
// so the downward API's default limit shows which one it reads.
const kubeReservedCPU = "500m"

// TestPodLifecycleDetails runs one agent and, in parallel, pods whose
// container restart policies and rules, sidecar termination order,
// managed /etc/hosts, RuntimeClass and downward API defaults must behave
// as the kubelet 1.37's.
func TestPodLifecycleDetails(t *testing.T) {
	startAgent(t, "--kube-reserved", "cpu="+kubeReservedCPU)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)

	t.Run("ContainerNeverInAPodAlways", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "never-once", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "once", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
			Command: []string{"sh", "-c", "exit 3"}, RestartPolicy: ptr.To(v1.ContainerRestartPolicyNever)})
		createPod(t, pod)
		waitPod(t, ns, "never-once", "once terminated", 60*time.Second, func(p *v1.Pod) bool {
			cs := containerStatus(p.Status.ContainerStatuses, "once")
			return cs != nil && cs.State.Terminated != nil
		})
		// Several syncs later it has not run again, and the pod runs on.
		time.Sleep(4 * time.Second)
		p := waitPod(t, ns, "never-once", "status", 10*time.Second, func(*v1.Pod) bool { return true })
		cs := containerStatus(p.Status.ContainerStatuses, "once")
		if cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
			t.Errorf("once: restarts %d state %+v, want terminated with exit 3 and never restarted", cs.RestartCount, cs.State)
		}
		if p.Status.Phase != v1.PodRunning {
			t.Errorf("phase %s, want Running: app still runs", p.Status.Phase)
		}
		if n := len(criContainers(t, criClient(t), string(p.UID), "once")); n != 1 {
			t.Errorf("%d runtime containers of once, want 1", n)
		}
	})

	t.Run("RestartPolicyRuleOnExitCode", func(t *testing.T) {
		t.Parallel()
		// Exits 42 the first time, 0 the next: the rule restarts it once,
		// though both policies say Never, and the pod then succeeds.
		pod := probePod(ns, "rule", busyboxImage, []string{"sh", "-c", "if [ -f /data/ran ]; then exit 0; fi; touch /data/ran; exit 42"}, func(c *v1.Container) {
			c.RestartPolicy = ptr.To(v1.ContainerRestartPolicyNever)
			c.RestartPolicyRules = []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart,
				ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}}
			c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
		})
		pod.Spec.RestartPolicy = v1.RestartPolicyNever
		pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		createPod(t, pod)
		p := waitPod(t, ns, "rule", "Succeeded", 60*time.Second, phaseIs(v1.PodSucceeded))
		cs := containerStatus(p.Status.ContainerStatuses, "app")
		if cs.RestartCount != 1 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			t.Errorf("restarts %d state %+v, want one restart and exit 0", cs.RestartCount, cs.State)
		}
		if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 42 {
			t.Errorf("last state %+v, want the exit 42 the rule restarted", cs.LastTerminationState)
		}
	})

	t.Run("SidecarsStopAfterTheMainContainerInReverseOrder", func(t *testing.T) {
		t.Parallel()
		// Each sidecar takes about two seconds to stop once told to.
		slowStop := []string{"sh", "-c", "trap 'sleep 2; exit 0' TERM; while true; do sleep 0.2; done"}
		sidecar := func(name string) v1.Container {
			return v1.Container{Name: name, Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: slowStop,
				RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways)}
		}
		pod := probePod(ns, "sidecars", busyboxImage, []string{"sh", "-c", "sleep 3"}, func(*v1.Container) {})
		pod.Spec.RestartPolicy = v1.RestartPolicyNever
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		pod.Spec.InitContainers = []v1.Container{sidecar("first"), sidecar("second")}
		createPod(t, pod)
		p := waitPod(t, ns, "sidecars", "Succeeded, sidecars stopped", 90*time.Second, func(p *v1.Pod) bool {
			for _, n := range []string{"first", "second"} {
				if cs := containerStatus(p.Status.InitContainerStatuses, n); cs == nil || cs.State.Terminated == nil {
					return false
				}
			}
			return p.Status.Phase == v1.PodSucceeded
		})
		app := containerStatus(p.Status.ContainerStatuses, "app").State.Terminated
		first := containerStatus(p.Status.InitContainerStatuses, "first").State.Terminated
		second := containerStatus(p.Status.InitContainerStatuses, "second").State.Terminated
		t.Logf("finished: app %s, second %s, first %s", app.FinishedAt, second.FinishedAt, first.FinishedAt)
		if second.FinishedAt.Before(&app.FinishedAt) {
			t.Errorf("sidecar second finished at %s, before the main container (%s)", second.FinishedAt, app.FinishedAt)
		}
		// Stopped one after the other: the first only once the second had.
		if !second.FinishedAt.Before(&first.FinishedAt) {
			t.Errorf("sidecar first finished at %s, not after second (%s): want reverse order", first.FinishedAt, second.FinishedAt)
		}
	})

	aliases := []v1.HostAlias{{IP: "10.11.12.13", Hostnames: []string{"foo.local", "bar.local"}}}

	t.Run("EtcHostsWithHostAliases", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "hosts", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		pod.Spec.HostAliases = aliases
		createPod(t, pod)
		p := waitPod(t, ns, "hosts", "Running", 60*time.Second, phaseIs(v1.PodRunning))
		got := mustKubectl(t, "-n", ns, "exec", "hosts", "--", "cat", "/etc/hosts")
		want := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
			podIPLines(p, "hosts") + "\n# Entries added by HostAliases.\n10.11.12.13\tfoo.local\tbar.local\n"
		if got != want {
			t.Errorf("/etc/hosts =\n%q\nwant\n%q", got, want)
		}
		if b, err := os.ReadFile(fmt.Sprintf("%s/pods/%s/etc-hosts", rootDir(), p.UID)); err != nil || string(b) != want {
			t.Errorf("the node's copy: %q, %v", b, err)
		}
		// A debug container gets the same file.
		addEphemeral(t, p, debugContainer("debugger", "", "cat", "/etc/hosts"))
		waitPod(t, ns, "hosts", "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
		if logs := mustKubectl(t, "-n", ns, "logs", "hosts", "-c", "debugger"); logs != want {
			t.Errorf("/etc/hosts in the debug container =\n%q\nwant\n%q", logs, want)
		}
	})

	t.Run("EtcHostsHostNetwork", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "hosts-hostnet", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		pod.Spec.HostNetwork = true
		pod.Spec.HostAliases = aliases
		createPod(t, pod)
		waitPod(t, ns, "hosts-hostnet", "Running", 60*time.Second, phaseIs(v1.PodRunning))
		node, err := os.ReadFile("/etc/hosts")
		if err != nil {
			t.Fatal(err)
		}
		got := mustKubectl(t, "-n", ns, "exec", "hosts-hostnet", "--", "cat", "/etc/hosts")
		want := "# Kubernetes-managed hosts file (host network).\n" + string(node) + "\n# Entries added by HostAliases.\n10.11.12.13\tfoo.local\tbar.local\n"
		if got != want {
			t.Errorf("/etc/hosts =\n%q\nwant\n%q", got, want)
		}
	})

	t.Run("RuntimeClass", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		suffix := rand.String(5)
		good, bad := "e2e-runc-"+suffix, "e2e-nohandler-"+suffix
		// runc is the name of containerd's runtime in hack/cluster.sh's
		// CRI config; nosuch is none.
		for name, handler := range map[string]string{good: "runc", bad: "nosuch"} {
			if _, err := client.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.NodeV1().RuntimeClasses().Delete(ctx, name, metav1.DeleteOptions{}) })
		}
		ok := probePod(ns, "rc-runc", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		ok.Spec.RuntimeClassName = &good
		missing := probePod(ns, "rc-nohandler", busyboxImage, []string{"sleep", "3600"}, func(*v1.Container) {})
		missing.Spec.RuntimeClassName = &bad
		createPod(t, ok)
		created := createPod(t, missing)
		waitPod(t, ns, "rc-runc", "Running", 60*time.Second, phaseIs(v1.PodRunning))
		// The runtime refuses the handler: the kubelet's Event, and the
		// pod waits (and is retried) in ContainerCreating.
		waitEvent(t, created, "FailedCreatePodSandBox", "Failed to create pod sandbox: ")
		if !hasEventContaining(t, created, "FailedCreatePodSandBox", "nosuch") {
			t.Error("the FailedCreatePodSandBox Event does not name the missing handler")
		}
		p := waitPod(t, ns, "rc-nohandler", "status", 10*time.Second, func(*v1.Pod) bool { return true })
		if p.Status.Phase != v1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
		if n := len(criSandboxes(t, criClient(t), string(p.UID))); n != 0 {
			t.Errorf("%d sandboxes for a pod whose runtime handler does not exist", n)
		}
	})

	t.Run("DownwardAPILimitDefaultsToAllocatable", func(t *testing.T) {
		t.Parallel()
		var alloc resource.Quantity
		waitFor(t, "the node's allocatable cpu below its capacity by "+kubeReservedCPU, 60*time.Second, func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			c, a := n.Status.Capacity[v1.ResourceCPU], n.Status.Allocatable[v1.ResourceCPU]
			alloc = a
			reserved := resource.MustParse(kubeReservedCPU)
			return c.MilliValue()-a.MilliValue() == reserved.MilliValue(), nil
		})
		ref := &v1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}
		pod := probePod(ns, "downward", busyboxImage, []string{"sh", "-c", "cat /podinfo/cpu; echo; echo $CPU; sleep 3600"}, func(c *v1.Container) {
			c.Env = []v1.EnvVar{{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: ref}}}
			c.VolumeMounts = []v1.VolumeMount{{Name: "podinfo", MountPath: "/podinfo"}}
		})
		withContainer := *ref
		withContainer.ContainerName = "app"
		pod.Spec.Volumes = []v1.Volume{{Name: "podinfo", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
			Items: []v1.DownwardAPIVolumeFile{{Path: "cpu", ResourceFieldRef: &withContainer}}}}}}
		createPod(t, pod)
		waitPod(t, ns, "downward", "Running", 60*time.Second, phaseIs(v1.PodRunning))
		want := strconv.FormatInt(alloc.MilliValue(), 10)
		waitFor(t, "the container's output", 30*time.Second, func(context.Context) (bool, error) {
			out, err := kubectl(t, "-n", ns, "logs", "downward")
			return err == nil && len(strings.Fields(out)) == 2, nil
		})
		if got := strings.Fields(mustKubectl(t, "-n", ns, "logs", "downward")); got[0] != want || got[1] != want {
			t.Errorf("limits.cpu in the volume %s, in the env %s; want the node's allocatable %sm", got[0], got[1], want)
		}
	})
}

// podIPLines are the managed hosts file's lines naming the pod, one per
// address.
func podIPLines(p *v1.Pod, hostname string) string {
	var b strings.Builder
	for _, ip := range p.Status.PodIPs {
		fmt.Fprintf(&b, "%s\t%s\n", ip.IP, hostname)
	}
	return b.String()
}
