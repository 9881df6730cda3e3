package criconfig

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBuildSandboxConfig(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		p.Spec.Hostname = "web-0"
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP}}
		p.Spec.SecurityContext.Sysctls = []v1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	})
	opts := SandboxOptions{
		Attempt:      2,
		PodLogsDir:   "/var/log/pods",
		CgroupParent: "/kubepods/besteffort/poduid-1",
		DNS: DNSOptions{
			ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", ResolvConf: "/etc/resolv.conf",
			ReadFile: func(string) ([]byte, error) { return []byte("nameserver 192.168.0.1\nsearch corp.example\n"), nil },
		},
	}
	got, err := BuildSandboxConfig(pod, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "app", Namespace: "ns", Uid: "uid-1", Attempt: 2},
		Hostname:     "web-0",
		LogDirectory: "/var/log/pods/ns_app_uid-1",
		DnsConfig: &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
			Options:  []string{"ndots:5"},
		},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080}},
		Labels:       map[string]string{"app": "web", LabelPodName: "app", LabelPodNamespace: "ns", LabelPodUID: "uid-1"},
		Annotations:  map[string]string{"note": "x"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/poduid-1",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
			Sysctls:   map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2},
			Overhead:  &runtimeapi.LinuxContainerResources{},
		},
	}
	assertProtoEqual(t, "sandbox config", got, want)
}

func TestBuildSandboxConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Pod)
		wantErr string
	}{
		{"invalid hostname", func(p *v1.Pod) { p.Spec.Hostname = "UPPER" }, `pod Hostname "UPPER" is not a valid DNS label`},
		{"user namespace", func(p *v1.Pod) { p.Spec.HostUsers = ptr(false) }, errUserNamespaces.Error()},
		{"groups policy", func(p *v1.Pod) {
			p.Spec.SecurityContext.SupplementalGroupsPolicy = ptr(v1.SupplementalGroupsPolicy("Odd"))
		}, "unsupported supplementalGroupsPolicy: Odd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildSandboxConfig(testPod(tc.mutate), SandboxOptions{DNS: DNSOptions{ClusterDNS: []string{"10.96.0.10"}}})
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
}

func TestLogPaths(t *testing.T) {
	if got := PodLogsDirectory("/var/log/pods", "ns", "app", "uid-1"); got != "/var/log/pods/ns_app_uid-1" {
		t.Errorf("PodLogsDirectory = %q", got)
	}
	if got := ContainerLogPath("debugger", 3); got != "debugger/3.log" {
		t.Errorf("ContainerLogPath = %q", got)
	}
}
