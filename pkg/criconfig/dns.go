package criconfig

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The resolver's limits the kubelet enforces (those of the API's pod
// validation, from glibc): more would be silently ignored, or make some
// glibc versions abort.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	maxResolvConfLength   = 10 << 20
)

// DNSOptions are the kubelet's DNS flags.
type DNSOptions struct {
	// ClusterDNS are the cluster DNS servers' IPs (--cluster-dns). Empty
	// makes ClusterFirst pods fall back to the Default policy.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain (--cluster-domain), e.g.
	// cluster.local.
	ClusterDomain string
	// ResolvConf is the host resolv.conf pods of the Default policy inherit
	// (--resolv-conf, e.g. /etc/resolv.conf). Empty gives them only a
	// nameserver on localhost, as the kubelet does.
	ResolvConf string
	// NodeIPs decide, when ResolvConf is empty, whether that localhost
	// nameserver is 127.0.0.1 or ::1.
	NodeIPs []string
	// ReadFile reads ResolvConf; nil means os.ReadFile. The file is read
	// for every sandbox, as the kubelet does, so edits take effect for new
	// pods.
	ReadFile func(name string) ([]byte, error)
}

// dnsType is what a pod's dnsPolicy comes down to.
type dnsType int

const (
	dnsCluster dnsType = iota
	dnsHost
	dnsNone
)

// defaultDNSOptions are the resolver options of cluster-DNS pods.
var defaultDNSOptions = []string{"ndots:5"}

func withDNS(pod *v1.Pod, o DNSOptions, rec EventRecorder) sandboxOpt {
	return func(cfg *runtimeapi.PodSandboxConfig) error {
		host, err := o.hostDNS()
		if err != nil {
			return err
		}
		c, events := podDNSConfig(pod, o, host)
		for _, e := range events {
			if rec != nil {
				rec.Eventf(pod, v1.EventTypeWarning, e.reason, "%s", e.message)
			}
		}
		cfg.DnsConfig = c
		return nil
	}
}

// warning is an Event the kubelet emits on the pod.
type warning struct{ reason, message string }

// hostDNS reads and parses o.ResolvConf; an empty path gives an empty config.
func (o DNSOptions) hostDNS() (*runtimeapi.DNSConfig, error) {
	if o.ResolvConf == "" {
		return &runtimeapi.DNSConfig{}, nil
	}
	read := o.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	b, err := read(o.ResolvConf)
	if err != nil {
		return nil, err
	}
	c, err := parseResolvConf(b)
	if err != nil {
		// The kubelet's words, capital letter included: users see them in
		// the pod's Events.
		//lint:ignore ST1005 the kubelet's message, kept word for word
		return nil, fmt.Errorf("Encountered error while parsing resolv conf file. Error: %w", err)
	}
	return c, nil
}

// parseResolvConf parses a resolv.conf: nameservers accumulate, the last
// search line wins (trailing dots dropped, so a.b and a.b. count once
// against the limits), options accumulate with the last of a name winning.
func parseResolvConf(b []byte) (*runtimeapi.DNSConfig, error) {
	if len(b) > maxResolvConfLength {
		return nil, fmt.Errorf("resolv.conf is longer than %d bytes", maxResolvConfLength)
	}
	c := &runtimeapi.DNSConfig{Servers: []string{}, Searches: []string{}, Options: []string{}}
	var errs []error
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				errs = append(errs, errors.New("nameserver list is empty "))
				continue
			}
			c.Servers = append(c.Servers, f[1])
		case "search":
			c.Searches = []string{}
			for _, s := range f[1:] {
				if s != "." {
					c.Searches = append(c.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			c.Options = mergeOptions(c.Options, f[1:])
		}
	}
	return c, errors.Join(errs...)
}

// podDNSType maps dnsPolicy to what it means for this pod: ClusterFirst
// is Default on the host network, where cluster DNS may be unreachable.
func podDNSType(pod *v1.Pod) dnsType {
	switch pod.Spec.DNSPolicy {
	case v1.DNSNone:
		return dnsNone
	case v1.DNSClusterFirstWithHostNet:
		return dnsCluster
	case v1.DNSClusterFirst:
		if pod.Spec.HostNetwork {
			return dnsHost
		}
		return dnsCluster
	case v1.DNSDefault:
		return dnsHost
	}
	// The API server rejects other values and defaults an empty one; the
	// kubelet treats anything else as ClusterFirst.
	return dnsCluster
}

// podDNSConfig returns pod's DNS config given the host's, and the warnings
// to report as Events on the pod.
func podDNSConfig(pod *v1.Pod, o DNSOptions, host *runtimeapi.DNSConfig) (*runtimeapi.DNSConfig, []warning) {
	var warnings []warning
	c := host
	typ := podDNSType(pod)
	if typ == dnsCluster && len(o.ClusterDNS) == 0 {
		warnings = append(warnings, warning{"MissingClusterDNS", fmt.Sprintf(
			"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
			podDesc(pod), v1.DNSClusterFirst, v1.DNSDefault)})
		typ = dnsHost
	}
	switch typ {
	case dnsNone:
		c = &runtimeapi.DNSConfig{}
	case dnsCluster:
		// The cluster DNS server is the pod's only nameserver: it forwards
		// what it cannot answer to the servers it is configured with.
		c = &runtimeapi.DNSConfig{
			Servers:  append([]string(nil), o.ClusterDNS...),
			Searches: clusterSearches(pod.Namespace, o.ClusterDomain, host.Searches),
			Options:  append([]string(nil), defaultDNSOptions...),
		}
	case dnsHost:
		if o.ResolvConf == "" {
			// No host resolv.conf: point at the local machine, which is
			// what a resolver with no nameserver does.
			c = &runtimeapi.DNSConfig{Servers: localNameservers(o.NodeIPs), Searches: []string{"."}}
		}
	}
	if d := pod.Spec.DNSConfig; d != nil {
		c = &runtimeapi.DNSConfig{
			Servers:  omitDuplicates(append(append([]string(nil), c.Servers...), d.Nameservers...)),
			Searches: omitDuplicates(append(append([]string(nil), c.Searches...), d.Searches...)),
			Options:  mergePodDNSOptions(c.Options, d.Options),
		}
	}
	var w []warning
	c.Servers, w = fitNameservers(c.Servers)
	warnings = append(warnings, w...)
	c.Searches, w = fitSearches(c.Searches)
	warnings = append(warnings, w...)
	return c, warnings
}

// clusterSearches puts the cluster's search domains before the host's.
func clusterSearches(namespace, clusterDomain string, hostSearches []string) []string {
	if clusterDomain == "" {
		return append([]string(nil), hostSearches...)
	}
	s := []string{namespace + ".svc." + clusterDomain, "svc." + clusterDomain, clusterDomain}
	return omitDuplicates(append(s, hostSearches...))
}

func localNameservers(nodeIPs []string) []string {
	var s []string
	for _, ip := range nodeIPs {
		if p := net.ParseIP(ip); p != nil && p.To4() == nil {
			s = append(s, "::1")
		} else {
			s = append(s, "127.0.0.1")
		}
	}
	if len(s) == 0 {
		s = []string{"127.0.0.1"}
	}
	return s
}

// fitNameservers keeps the first nameservers the resolver reads.
func fitNameservers(servers []string) ([]string, []warning) {
	if len(servers) <= maxDNSNameservers {
		return servers, nil
	}
	servers = servers[:maxDNSNameservers]
	return servers, []warning{{"DNSConfigForming", fmt.Sprintf(
		"Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: %s", strings.Join(servers, " "))}}
}

// fitSearches keeps the search list within the resolver's limits: at most
// 32 domains, none longer than 253 characters, and a line of at most 2048
// characters, dropping from the end.
func fitSearches(searches []string) ([]string, []warning) {
	exceeded := false
	if len(searches) > maxDNSSearchPaths {
		searches = searches[:maxDNSSearchPaths]
		exceeded = true
	}
	kept := make([]string, 0, len(searches))
	for _, s := range searches {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	for len(kept) > 0 && len(strings.Join(kept, " ")) > maxDNSSearchListChars {
		kept = kept[:len(kept)-1]
		exceeded = true
	}
	if !exceeded {
		return kept, nil
	}
	return kept, []warning{{"DNSConfigForming", fmt.Sprintf(
		"Search Line limits were exceeded, some search paths have been omitted, the applied search line is: %s", strings.Join(kept, " "))}}
}

func omitDuplicates(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := []string{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// mergeOptions adds resolver options ("name" or "name:value") to existing
// ones; a later option replaces an earlier one of the same name in place.
// The kubelet merges through a map, so its order is random; this keeps
// first-seen order so configs compare equal.
func mergeOptions(existing, added []string) []string {
	out := append([]string{}, existing...)
	index := make(map[string]int, len(out))
	for i, o := range out {
		index[optionName(o)] = i
	}
	for _, o := range added {
		n := optionName(o)
		if i, ok := index[n]; ok {
			out[i] = o
			continue
		}
		index[n] = len(out)
		out = append(out, o)
	}
	return out
}

func optionName(o string) string {
	n, _, _ := strings.Cut(o, ":")
	return n
}

// mergePodDNSOptions adds the pod's dnsConfig options, which win over the
// base config's of the same name.
func mergePodDNSOptions(existing []string, podOptions []v1.PodDNSConfigOption) []string {
	added := make([]string, 0, len(podOptions))
	for _, o := range podOptions {
		s := o.Name
		if o.Value != nil && *o.Value != "" {
			s += ":" + *o.Value
		}
		added = append(added, s)
	}
	return mergeOptions(existing, added)
}

// podDesc names a pod in messages as the kubelet's format.Pod does:
// NAME_NAMESPACE(UID), '_' being impossible in names.
func podDesc(pod *v1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
