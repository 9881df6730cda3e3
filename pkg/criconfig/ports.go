package criconfig

import (
	"fmt"
	"net"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func withPortMappings(pod *v1.Pod) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		cfg.PortMappings = portMappings(pod)
		return nil
	}
}

// portMappings returns the sandbox's port mappings: every port of every
// regular container, as the kubelet sends them. Ports without a hostPort
// are included too; the runtime's port-mapping plugin skips them. Init and
// ephemeral containers' ports are not mapped.
func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for i := range pod.Spec.Containers {
		// A port name is unique within a container; unnamed ports get a
		// name from what makes them distinct, family included, so the same
		// port may be mapped once for IPv4 and once for IPv6.
		names := map[string]bool{}
		for _, p := range pod.Spec.Containers[i].Ports {
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("%s-%s-%s:%d:%d", ipFamily(p.HostIP), p.Protocol, p.HostIP, p.ContainerPort, p.HostPort)
			}
			if names[name] {
				continue
			}
			names[name] = true
			out = append(out, &runtimeapi.PortMapping{
				Protocol:      runtimeProtocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	return out
}

func ipFamily(hostIP string) string {
	switch {
	case hostIP == "":
		return "any"
	case net.ParseIP(hostIP) != nil && net.ParseIP(hostIP).To4() == nil:
		return "v6"
	default:
		return "v4"
	}
}

// runtimeProtocol maps an API protocol to CRI's; anything unknown (only an
// undefaulted empty one gets here) is TCP, the API's default.
func runtimeProtocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	default:
		return runtimeapi.Protocol_TCP
	}
}
