//go:build e2e

package e2enode

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// podEnv reads a running container's environment with kubectl exec.
func podEnv(t *testing.T, ns, pod, container string) map[string]string {
	t.Helper()
	out := mustKubectl(t, "-n", ns, "exec", pod, "-c", container, "--", "env")
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// createService creates a ClusterIP Service with one unnamed TCP port and
// returns it with its cluster IP.
func createService(t *testing.T, ns, name string, port int32) *v1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services(ns).Create(context.Background(), &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []v1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
		t.Fatalf("service %s has no cluster IP: %q", name, svc.Spec.ClusterIP)
	}
	return svc
}

// TestServiceEnv: containers get the kubelet's service variables, the
// default namespace's kubernetes Service always, their namespace's
// Services with enableServiceLinks; their own env wins and may refer to
// them; a Service created later does not reach a running container.
func TestServiceEnv(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	ctx := context.Background()

	master, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the kubernetes service: %v", err)
	}
	masterIP, masterPort := master.Spec.ClusterIP, strconv.Itoa(int(master.Spec.Ports[0].Port))
	web := createService(t, ns, "web", 80)
	// A headless Service gives no variables.
	if _, err := client.CoreV1().Services(ns).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: ns},
		Spec:       v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Selector: map[string]string{"app": "x"}, Ports: []v1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create headless service: %v", err)
	}

	newPod := func(name string, links *bool) *v1.Pod {
		return &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				EnableServiceLinks:            links,
				Containers: []v1.Container{{
					Name: "app", Image: busyboxImage, ImagePullPolicy: v1.PullNever,
					Command: []string{"sleep", "3600"},
					Env: []v1.EnvVar{
						{Name: "API", Value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
						{Name: "WEB_PORT", Value: "mine"},
					},
				}},
			},
		}
	}
	createPod(t, newPod("links", nil))
	createPod(t, newPod("nolinks", ptr.To(false)))
	waitPod(t, ns, "links", "Running", 90*time.Second, phaseIs(v1.PodRunning))
	waitPod(t, ns, "nolinks", "Running", 90*time.Second, phaseIs(v1.PodRunning))

	wantMaster := map[string]string{
		"KUBERNETES_SERVICE_HOST":                      masterIP,
		"KUBERNETES_SERVICE_PORT":                      masterPort,
		"KUBERNETES_SERVICE_PORT_HTTPS":                masterPort,
		"KUBERNETES_PORT":                              "tcp://" + masterIP + ":" + masterPort,
		"KUBERNETES_PORT_" + masterPort + "_TCP":       "tcp://" + masterIP + ":" + masterPort,
		"KUBERNETES_PORT_" + masterPort + "_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_" + masterPort + "_TCP_PORT":  masterPort,
		"KUBERNETES_PORT_" + masterPort + "_TCP_ADDR":  masterIP,
		// $(VAR) expansion sees the service variables.
		"API": "https://" + masterIP + ":" + masterPort,
		// The pod's own env wins.
		"WEB_PORT": "mine",
	}
	check := func(vars map[string]string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got, ok := vars[k]; !ok || got != v {
				t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
			}
		}
	}

	links := podEnv(t, ns, "links", "app")
	check(links, wantMaster)
	check(links, map[string]string{
		"WEB_SERVICE_HOST":      web.Spec.ClusterIP,
		"WEB_SERVICE_PORT":      "80",
		"WEB_PORT_80_TCP":       "tcp://" + web.Spec.ClusterIP + ":80",
		"WEB_PORT_80_TCP_PROTO": "tcp",
		"WEB_PORT_80_TCP_PORT":  "80",
		"WEB_PORT_80_TCP_ADDR":  web.Spec.ClusterIP,
	})
	for k := range links {
		if strings.HasPrefix(k, "HEADLESS_") {
			t.Errorf("links pod has %s from a headless service", k)
		}
	}

	nolinks := podEnv(t, ns, "nolinks", "app")
	check(nolinks, wantMaster)
	for k := range nolinks {
		if strings.HasPrefix(k, "WEB_") && k != "WEB_PORT" {
			t.Errorf("pod with enableServiceLinks false has %s=%s", k, nolinks[k])
		}
	}

	// A Service created after the pod started does not reach its running
	// container (the variables are fixed at creation, as the kubelet's),
	// but a debug container created later sees it.
	late := createService(t, ns, "late", 81)
	if _, ok := podEnv(t, ns, "links", "app")["LATE_SERVICE_HOST"]; ok {
		t.Error("running container got LATE_SERVICE_HOST from a Service created after it")
	}
	pod, err := client.CoreV1().Pods(ns).Get(ctx, "links", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The agent's Service cache sees late within moments; the debug
	// container is created after that.
	time.Sleep(2 * time.Second)
	addEphemeral(t, pod, debugContainer("debugger", "app", "sh", "-c", "echo late=$LATE_SERVICE_HOST kube=$KUBERNETES_SERVICE_HOST"))
	waitPod(t, ns, "links", "debugger terminated", 60*time.Second, ephemeralTerminated("debugger"))
	logs := mustKubectl(t, "-n", ns, "logs", "links", "-c", "debugger")
	if want := "late=" + late.Spec.ClusterIP + " kube=" + masterIP; !strings.Contains(logs, want) {
		t.Errorf("debugger output = %q, want %q", logs, want)
	}
}
