package criconfig

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// hostnameMaxLen is the kernel's nodename limit (64 bytes with the NUL).
	hostnameMaxLen = 63
	// fqdnMaxLen is the longest FQDN that still fits the kernel's nodename
	// when setHostnameAsFQDN puts it there.
	fqdnMaxLen = 64
)

// sandboxHostname returns the Hostname of pod's sandbox: empty for a
// host-network pod, whose sandbox shares the host's UTS namespace and name.
func sandboxHostname(pod *v1.Pod, clusterDomain string) (string, error) {
	if pod.Spec.HostNetwork {
		return "", nil
	}
	hostname, domain, err := podHostnameAndDomain(pod, clusterDomain)
	if err != nil {
		return "", err
	}
	return kernelHostname(hostname, domain, pod.Spec.SetHostnameAsFQDN)
}

// podHostnameAndDomain returns the pod's short host name (hostnameOverride,
// else spec.hostname, else the pod's name, truncated to a valid length) and
// its DNS domain (SUBDOMAIN.NAMESPACE.svc.CLUSTERDOMAIN when it has a
// subdomain), with the kubelet's validation messages.
func podHostnameAndDomain(pod *v1.Pod, clusterDomain string) (string, string, error) {
	if pod.Spec.HostnameOverride != nil {
		h := *pod.Spec.HostnameOverride
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod HostnameOverride %q is not a valid DNS subdomain: %s", h, strings.Join(msgs, ";"))
		}
		h, err := truncateHostname(pod.Name, h)
		// An override is the whole name: no subdomain is appended.
		return h, "", err
	}

	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Hostname); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Hostname %q is not a valid DNS label: %s", pod.Spec.Hostname, strings.Join(msgs, ";"))
		}
		hostname = pod.Spec.Hostname
	}
	hostname, err := truncateHostname(pod.Name, hostname)
	if err != nil {
		return "", "", err
	}

	domain := ""
	if pod.Spec.Subdomain != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Subdomain); len(msgs) != 0 {
			return "", "", fmt.Errorf("pod Subdomain %q is not a valid DNS label: %s", pod.Spec.Subdomain, strings.Join(msgs, ";"))
		}
		domain = fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, clusterDomain)
	}
	return hostname, domain, nil
}

// truncateHostname cuts hostname to the kernel's limit. A pod name may be a
// 253-character DNS subdomain, longer than any host name.
func truncateHostname(podName, hostname string) (string, error) {
	if len(hostname) <= hostnameMaxLen {
		return hostname, nil
	}
	// A host name must not end with '-' or '.', which the cut may expose.
	t := strings.TrimRight(hostname[:hostnameMaxLen], "-.")
	if t == "" {
		return "", fmt.Errorf("hostname for pod %q was invalid: %q", podName, hostname)
	}
	return t, nil
}

// kernelHostname returns the name the sandbox's kernel nodename gets: the
// FQDN when the pod asks for it and has a domain, else the short name.
func kernelHostname(hostname, domain string, setHostnameAsFQDN *bool) (string, error) {
	if domain == "" || setHostnameAsFQDN == nil || !*setHostnameAsFQDN {
		return hostname, nil
	}
	fqdn := hostname + "." + domain
	if len(fqdn) > fqdnMaxLen {
		return "", fmt.Errorf("failed to construct FQDN from pod hostname and cluster domain, FQDN %s is too long (%d characters is the max, %d characters requested)", fqdn, fqdnMaxLen, len(fqdn))
	}
	return fqdn, nil
}
