//go:build e2e

package e2enode

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestProbes runs one agent and, in parallel, pods whose liveness,
// readiness and startup probes (exec, httpGet, tcpSocket) must behave as
// the kubelet's. Periods are 1s so the whole test takes well under a
// minute.
func TestProbes(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)

	t.Run("FailingReadinessIsNotReady", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "unready", busyboxImage, []string{"sleep", "3600"}, func(c *v1.Container) {
			c.ReadinessProbe = fastProbe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}, 2)
		})
		pod.Labels = map[string]string{"app": "unready"}
		createPod(t, pod)
		svc := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "unready", Namespace: ns},
			Spec: v1.ServiceSpec{
				Selector: map[string]string{"app": "unready"},
				Ports:    []v1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		if _, err := client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, ns, "unready", "Running and failing its readiness probe", 60*time.Second, func(p *v1.Pod) bool {
			return p.Status.Phase == v1.PodRunning && hasEvent(t, p, "Unhealthy", "Readiness probe failed")
		})
		// A few more periods: still not ready.
		time.Sleep(3 * time.Second)
		p := waitPod(t, ns, "unready", "status", 10*time.Second, func(*v1.Pod) bool { return true })
		cs := containerStatus(p.Status.ContainerStatuses, "app")
		if podReady(p) || cs == nil || cs.Ready || cs.Started == nil || !*cs.Started || cs.State.Running == nil {
			t.Fatalf("pod ready=%v, container status %+v: want running, started, not ready", podReady(p), cs)
		}
		if c := podCondition(p, v1.ContainersReady); c == nil || c.Status != v1.ConditionFalse {
			t.Errorf("ContainersReady = %+v, want False", c)
		}
		// The EndpointSlice controller lists the pod, not ready.
		waitFor(t, "the service's EndpointSlice to list the pod not ready", 30*time.Second, func(ctx context.Context) (bool, error) {
			slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=unready"})
			if err != nil {
				return false, err
			}
			found := false
			for _, s := range slices.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						t.Fatalf("endpoint %v is ready, want none ready", e.Addresses)
					}
					for _, a := range e.Addresses {
						found = found || a == p.Status.PodIP
					}
				}
			}
			return found, nil
		})
	})

	t.Run("FailingLivenessRestarts", func(t *testing.T) {
		t.Parallel()
		// The first instance turns unhealthy after 3s; the one after the
		// restart stays healthy (the emptyDir outlives the container).
		script := `if [ -f /data/once ]; then touch /tmp/healthy; else touch /data/once /tmp/healthy; (sleep 3; rm /tmp/healthy) & fi; exec sleep 3600`
		pod := probePod(ns, "liveness", busyboxImage, []string{"sh", "-c", script}, func(c *v1.Container) {
			c.LivenessProbe = fastProbe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"test", "-f", "/tmp/healthy"}}}, 2)
			// sleep as PID 1 ignores SIGTERM: the pod's 30s grace would
			// hold the restart back; the probe's own grace is 1s.
			c.LivenessProbe.TerminationGracePeriodSeconds = ptr.To[int64](1)
			c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
		})
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		createPod(t, pod)
		p := waitPod(t, ns, "liveness", "restarted once and running", 60*time.Second, func(p *v1.Pod) bool {
			cs := containerStatus(p.Status.ContainerStatuses, "app")
			return cs != nil && cs.RestartCount == 1 && cs.State.Running != nil && cs.Ready
		})
		cs := containerStatus(p.Status.ContainerStatuses, "app")
		last := cs.LastTerminationState.Terminated
		if last == nil || last.ExitCode != 137 {
			t.Errorf("last termination = %+v, want killed (137)", last)
		}
		waitEvent(t, p, "Unhealthy", "Liveness probe failed")
		waitEvent(t, p, "Killing", "Container app failed liveness probe, will be restarted")
		// The kill took the probe's grace (1s), not the pod's (30s).
		if last != nil && last.StartedAt.Add(20*time.Second).Before(last.FinishedAt.Time) {
			t.Errorf("first instance ran %s: the kill waited for the pod's grace period", last.FinishedAt.Sub(last.StartedAt.Time))
		}
	})

	t.Run("HTTPGetReadiness", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "http", distrolessImage, nil, func(c *v1.Container) {
			c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}
			c.ReadinessProbe = fastProbe(v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, 2)
			c.LivenessProbe = fastProbe(v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080),
				HTTPHeaders: []v1.HTTPHeader{{Name: "X-Probe", Value: "1"}}}}, 2)
		})
		createPod(t, pod)
		waitPod(t, ns, "http", "Ready", 60*time.Second, podReady)
		time.Sleep(3 * time.Second)
		p := waitPod(t, ns, "http", "still Ready", 10*time.Second, podReady)
		if cs := containerStatus(p.Status.ContainerStatuses, "app"); cs == nil || cs.RestartCount != 0 {
			t.Errorf("container status %+v: want no restart", cs)
		}
	})

	t.Run("TCPSocket", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "tcp", distrolessImage, nil, func(c *v1.Container) {
			c.ReadinessProbe = fastProbe(v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, 2)
		})
		closed := probePod(ns, "tcp-closed", distrolessImage, nil, func(c *v1.Container) {
			c.ReadinessProbe = fastProbe(v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(9999)}}, 2)
		})
		createPod(t, pod)
		createPod(t, closed)
		waitPod(t, ns, "tcp", "Ready", 60*time.Second, podReady)
		p := waitPod(t, ns, "tcp-closed", "failing its tcp readiness probe", 60*time.Second, func(p *v1.Pod) bool {
			return p.Status.Phase == v1.PodRunning && hasEvent(t, p, "Unhealthy", "Readiness probe failed: dial tcp")
		})
		if podReady(p) {
			t.Error("pod whose port is closed is Ready")
		}
	})

	t.Run("StartupGatesLiveness", func(t *testing.T) {
		t.Parallel()
		// Liveness would fail at once (failureThreshold 1) until the
		// file exists; the startup probe holds it back until then.
		pod := probePod(ns, "startup", busyboxImage, []string{"sh", "-c", "sleep 4; touch /tmp/started; exec sleep 3600"}, func(c *v1.Container) {
			c.StartupProbe = fastProbe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"test", "-f", "/tmp/started"}}}, 20)
			c.LivenessProbe = fastProbe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"test", "-f", "/tmp/started"}}}, 1)
		})
		createPod(t, pod)
		sawUnstarted := false
		waitPod(t, ns, "startup", "Ready", 60*time.Second, func(p *v1.Pod) bool {
			if cs := containerStatus(p.Status.ContainerStatuses, "app"); cs != nil && cs.State.Running != nil && cs.Started != nil && !*cs.Started {
				if cs.Ready {
					t.Errorf("container ready before it started: %+v", cs)
				}
				sawUnstarted = true
			}
			return podReady(p)
		})
		if !sawUnstarted {
			t.Error("never saw the container running but not started")
		}
		time.Sleep(2 * time.Second)
		p := waitPod(t, ns, "startup", "status", 10*time.Second, func(*v1.Pod) bool { return true })
		if cs := containerStatus(p.Status.ContainerStatuses, "app"); cs == nil || cs.RestartCount != 0 || cs.Started == nil || !*cs.Started {
			t.Errorf("container status %+v: want started, no restart", cs)
		}
		if hasEvent(t, p, "Unhealthy", "Liveness probe failed") {
			t.Error("the liveness probe ran before the startup probe succeeded")
		}
	})

	t.Run("FailingStartupRestarts", func(t *testing.T) {
		t.Parallel()
		pod := probePod(ns, "startup-fails", busyboxImage, []string{"sleep", "3600"}, func(c *v1.Container) {
			c.StartupProbe = fastProbe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}, 2)
			c.StartupProbe.TerminationGracePeriodSeconds = ptr.To[int64](1)
		})
		createPod(t, pod)
		p := waitPod(t, ns, "startup-fails", "restarted", 60*time.Second, func(p *v1.Pod) bool {
			cs := containerStatus(p.Status.ContainerStatuses, "app")
			return cs != nil && cs.RestartCount >= 1
		})
		waitEvent(t, p, "Killing", "Container app failed startup probe, will be restarted")
		waitEvent(t, p, "Unhealthy", "Startup probe failed")
		if podReady(p) {
			t.Error("a pod whose startup probe never succeeds is Ready")
		}
	})
}

// probePod is a one-container pod; mutate adds the probes.
func probePod(ns, name, image string, command []string, mutate func(*v1.Container)) *v1.Pod {
	c := v1.Container{Name: "app", Image: image, ImagePullPolicy: v1.PullNever, Command: command}
	mutate(&c)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{c},
		},
	}
}

// fastProbe probes every second, giving up after failureThreshold failures.
func fastProbe(h v1.ProbeHandler, failureThreshold int32) *v1.Probe {
	return &v1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: failureThreshold}
}

// waitEvent waits for an Event hasEvent finds: the agent's Events reach
// the API server behind its client's rate limit, after its status.
func waitEvent(t *testing.T, pod *v1.Pod, reason, prefix string) {
	t.Helper()
	waitFor(t, "a "+reason+" event "+prefix, 30*time.Second, func(context.Context) (bool, error) {
		return hasEvent(t, pod, reason, prefix), nil
	})
}

// hasEvent reports whether the pod has an Event with that reason whose
// message starts with prefix.
func hasEvent(t *testing.T, pod *v1.Pod, reason, prefix string) bool {
	t.Helper()
	return hasPodEvent(t, pod, reason, func(msg string) bool { return strings.HasPrefix(msg, prefix) })
}

// hasPodEvent reports whether the pod (this very pod: its UID) has an Event
// with that reason whose message match accepts.
func hasPodEvent(t *testing.T, pod *v1.Pod, reason string, match func(string) bool) bool {
	t.Helper()
	evs, err := client.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod.Name,
	})
	if err != nil {
		t.Logf("list events: %v", err)
		return false
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.UID == pod.UID && e.Reason == reason && match(e.Message) {
			return true
		}
	}
	return false
}

func podCondition(p *v1.Pod, typ v1.PodConditionType) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
