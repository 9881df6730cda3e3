package criconfig

import (
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerNamespaces(t *testing.T) {
	const (
		pod       = runtimeapi.NamespaceMode_POD
		container = runtimeapi.NamespaceMode_CONTAINER
		node      = runtimeapi.NamespaceMode_NODE
		target    = runtimeapi.NamespaceMode_TARGET
	)
	for _, tc := range []struct {
		name     string
		mutate   func(*v1.Pod)
		targetID string
		want     *runtimeapi.NamespaceOption
	}{
		{"defaults", nil, "", &runtimeapi.NamespaceOption{Network: pod, Pid: container, Ipc: pod}},
		{"host namespaces", func(p *v1.Pod) { p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true }, "",
			&runtimeapi.NamespaceOption{Network: node, Pid: node, Ipc: node}},
		{"shareProcessNamespace", func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptr(true) }, "",
			&runtimeapi.NamespaceOption{Network: pod, Pid: pod, Ipc: pod}},
		{"shareProcessNamespace false", func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptr(false) }, "",
			&runtimeapi.NamespaceOption{Network: pod, Pid: container, Ipc: pod}},
		{"hostPID wins over shareProcessNamespace", func(p *v1.Pod) { p.Spec.HostPID = true; p.Spec.ShareProcessNamespace = ptr(true) }, "",
			&runtimeapi.NamespaceOption{Network: pod, Pid: node, Ipc: pod}},
		{"ephemeral with target joins it", nil, "abc123",
			&runtimeapi.NamespaceOption{Network: pod, Pid: target, Ipc: pod, TargetId: "abc123"}},
		{"target under shareProcessNamespace stays in the pod's", func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptr(true) }, "abc123",
			&runtimeapi.NamespaceOption{Network: pod, Pid: pod, Ipc: pod}},
		{"target under hostPID stays on the host's", func(p *v1.Pod) { p.Spec.HostPID = true }, "abc123",
			&runtimeapi.NamespaceOption{Network: pod, Pid: node, Ipc: pod}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			got, err := containerNamespaces(p, tc.targetID)
			if err != nil {
				t.Fatal(err)
			}
			assertProtoEqual(t, "namespaces", got, tc.want)
		})
	}
}

func TestUserNamespacesRefused(t *testing.T) {
	p := testPod(func(p *v1.Pod) { p.Spec.HostUsers = ptr(false) })
	if _, err := podNamespaces(p); !errors.Is(err, errUserNamespaces) {
		t.Errorf("hostUsers=false: err = %v, want errUserNamespaces", err)
	}
	p.Spec.HostUsers = ptr(true)
	if _, err := podNamespaces(p); err != nil {
		t.Errorf("hostUsers=true: %v", err)
	}
}
