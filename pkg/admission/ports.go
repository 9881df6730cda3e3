package admission

import v1 "k8s.io/api/core/v1"

// bindAll is the host IP a host port without one binds.
const bindAll = "0.0.0.0"

// hostPort is one (IP, protocol, port) a pod takes on the node.
type hostPort struct {
	ip       string
	protocol v1.Protocol
	port     int32
}

// hostPorts returns the host ports of the pod's containers that run for
// its whole life: its regular containers and sidecars, not the init
// containers that run to completion, as the scheduler's GetHostPorts.
func hostPorts(pod *v1.Pod) []hostPort {
	var out []hostPort
	add := func(c *v1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if hp.ip == "" {
				hp.ip = bindAll
			}
			if hp.protocol == "" {
				hp.protocol = v1.ProtocolTCP
			}
			out = append(out, hp)
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return out
}

// portsConflict reports whether a host port of pod is taken by an admitted
// pod: same protocol and port, on the same IP or where either binds all
// addresses (the scheduler's NodePorts).
func portsConflict(pod *v1.Pod, admitted []*v1.Pod) bool {
	want := hostPorts(pod)
	if len(want) == 0 {
		return false
	}
	for _, other := range admitted {
		for _, used := range hostPorts(other) {
			for _, w := range want {
				if w.protocol == used.protocol && w.port == used.port &&
					(w.ip == used.ip || w.ip == bindAll || used.ip == bindAll) {
					return true
				}
			}
		}
	}
	return false
}
