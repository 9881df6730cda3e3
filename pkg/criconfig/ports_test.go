package criconfig

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPortMappings(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "init", Ports: []v1.ContainerPort{{ContainerPort: 1, HostPort: 1}}}}
		p.Spec.Containers = []v1.Container{
			{Name: "a", Ports: []v1.ContainerPort{
				{Name: "http", ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP},
				{Name: "http", ContainerPort: 81, HostPort: 8081, Protocol: v1.ProtocolTCP}, // same name: dropped
				{ContainerPort: 53, HostPort: 5353, Protocol: v1.ProtocolUDP, HostIP: "127.0.0.1"},
				{ContainerPort: 53, HostPort: 5353, Protocol: v1.ProtocolUDP, HostIP: "::1"}, // other family: kept
				{ContainerPort: 53, HostPort: 5353, Protocol: v1.ProtocolUDP, HostIP: "127.0.0.1"},
				{ContainerPort: 9000}, // no hostPort, no protocol: sent, as TCP
			}},
			{Name: "b", Ports: []v1.ContainerPort{
				// Names are unique per container only.
				{Name: "http", ContainerPort: 90, HostPort: 9090, Protocol: v1.ProtocolSCTP},
			}},
		}
	})
	want := []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
		{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
		{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "::1"},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 9000},
		{Protocol: runtimeapi.Protocol_SCTP, ContainerPort: 90, HostPort: 9090},
	}
	got := portMappings(pod)
	if len(got) != len(want) {
		t.Fatalf("got %d mappings, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		assertProtoEqual(t, "mapping", got[i], want[i])
	}
	if m := portMappings(testPod()); m != nil {
		t.Errorf("no ports: got %v, want nil", m)
	}
}
