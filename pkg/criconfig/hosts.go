package criconfig

import (
	"bytes"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// EtcHostsPath is where every container of a pod gets the kubelet-managed
// hosts file, unless it mounts a volume there itself.
const EtcHostsPath = "/etc/hosts"

// The kubelet's headers of the hosts file it manages; tools and people
// recognise the file by them.
const (
	managedHostsHeader            = "# Kubernetes-managed hosts file.\n"
	managedHostsHeaderHostNetwork = "# Kubernetes-managed hosts file (host network).\n"
)

// ShouldMountHostsFile reports whether the pod's containers get the
// managed hosts file, as the kubelet decides: a host-network pod always,
// another once its sandbox has an address.
func ShouldMountHostsFile(pod *v1.Pod, podIPs []string) bool {
	return pod.Spec.HostNetwork || len(podIPs) > 0
}

// HostsFile returns the content of pod's managed /etc/hosts, as the
// kubelet writes it to ROOTDIR/pods/UID/etc-hosts. A pod on the pod
// network gets localhost entries, one line per address in podIPs naming
// the pod's host name (its FQDN first when it has a subdomain), then its
// hostAliases; a host-network pod gets the node's own hosts file
// (nodeHosts) followed by its hostAliases. clusterDomain makes the FQDN.
// It is pure; an invalid hostname or subdomain is an error with the
// kubelet's message.
func HostsFile(pod *v1.Pod, podIPs []string, clusterDomain string, nodeHosts []byte) ([]byte, error) {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		b.WriteString(managedHostsHeaderHostNetwork)
		b.Write(nodeHosts)
		writeHostAliases(&b, pod.Spec.HostAliases)
		return b.Bytes(), nil
	}
	hostname, domain, err := podHostnameAndDomain(pod, clusterDomain)
	if err != nil {
		return nil, err
	}
	b.WriteString(managedHostsHeader)
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	writeHostAliases(&b, pod.Spec.HostAliases)
	return b.Bytes(), nil
}

// writeHostAliases appends the kubelet's hostAliases section: one line per
// alias entry, its IP and every host name.
func writeHostAliases(b *bytes.Buffer, aliases []v1.HostAlias) {
	if len(aliases) == 0 {
		return
	}
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
}

// mountsEtcHosts reports whether c mounts a volume at /etc/hosts itself,
// which then replaces the managed file.
func mountsEtcHosts(c *v1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == EtcHostsPath {
			return true
		}
	}
	return false
}
