package criconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    *runtimeapi.DNSConfig
		wantErr string
	}{
		{"empty", "", &runtimeapi.DNSConfig{Servers: []string{}, Searches: []string{}, Options: []string{}}, ""},
		{"typical", "# comment\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch corp.example. example.com .\noptions ndots:2 rotate\n",
			&runtimeapi.DNSConfig{Servers: []string{"10.0.0.2", "10.0.0.3"}, Searches: []string{"corp.example", "example.com"}, Options: []string{"ndots:2", "rotate"}}, ""},
		{"last search wins, options merge by name", "search a\nsearch b\noptions ndots:2 timeout:1\noptions ndots:3\n",
			&runtimeapi.DNSConfig{Servers: []string{}, Searches: []string{"b"}, Options: []string{"ndots:3", "timeout:1"}}, ""},
		{"nameserver without address", "nameserver\n", nil, "nameserver list is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResolvConf([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertProtoEqual(t, "config", got, tc.want)
		})
	}
}

func TestPodDNSConfig(t *testing.T) {
	host := func() *runtimeapi.DNSConfig {
		return &runtimeapi.DNSConfig{Servers: []string{"192.168.0.1"}, Searches: []string{"corp.example"}, Options: []string{"ndots:1"}}
	}
	cluster := DNSOptions{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", ResolvConf: "/etc/resolv.conf"}
	clusterSearch := []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}
	for _, tc := range []struct {
		name         string
		mutate       func(*v1.Pod)
		opts         DNSOptions
		want         *runtimeapi.DNSConfig
		wantWarnings []string
	}{
		{"ClusterFirst", nil, cluster,
			&runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: clusterSearch, Options: []string{"ndots:5"}}, nil},
		{"ClusterFirst without cluster domain keeps host searches", nil, DNSOptions{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/etc/resolv.conf"},
			&runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"corp.example"}, Options: []string{"ndots:5"}}, nil},
		{"ClusterFirst without cluster DNS falls back to Default", nil, DNSOptions{ClusterDomain: "cluster.local", ResolvConf: "/etc/resolv.conf"},
			host(), []string{`MissingClusterDNS: pod: "app_ns(uid-1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`}},
		{"ClusterFirst on host network is Default", func(p *v1.Pod) { p.Spec.HostNetwork = true }, cluster, host(), nil},
		{"ClusterFirstWithHostNet", func(p *v1.Pod) { p.Spec.HostNetwork = true; p.Spec.DNSPolicy = v1.DNSClusterFirstWithHostNet }, cluster,
			&runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: clusterSearch, Options: []string{"ndots:5"}}, nil},
		{"Default", func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSDefault }, cluster, host(), nil},
		{"Default without resolv.conf points at localhost", func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSDefault },
			DNSOptions{NodeIPs: []string{"10.0.0.5", "fd00::5"}},
			&runtimeapi.DNSConfig{Servers: []string{"127.0.0.1", "::1"}, Searches: []string{"."}}, nil},
		{"None with dnsConfig", func(p *v1.Pod) {
			p.Spec.DNSPolicy = v1.DNSNone
			p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}}}
		}, cluster, &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []string{"ndots:2", "edns0"}}, nil},
		{"dnsConfig merges into ClusterFirst", func(p *v1.Pod) {
			p.Spec.DNSConfig = &v1.PodDNSConfig{
				Nameservers: []string{"10.96.0.10", "1.1.1.1"},
				Searches:    []string{"cluster.local", "extra.example"},
				Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr("1")}, {Name: "single-request", Value: ptr("")}},
			}
		}, cluster, &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10", "1.1.1.1"},
			Searches: append(append([]string(nil), clusterSearch...), "extra.example"),
			Options:  []string{"ndots:1", "single-request"},
		}, nil},
		{"too many nameservers", func(p *v1.Pod) {
			p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}}
		}, cluster, &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "1.1.1.1", "8.8.8.8"}, Searches: clusterSearch, Options: []string{"ndots:5"}},
			[]string{"DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			got, warnings := podDNSConfig(p, tc.opts, host())
			assertProtoEqual(t, "dns", got, tc.want)
			var w []string
			for _, x := range warnings {
				w = append(w, x.reason+": "+x.message)
			}
			if fmt.Sprint(w) != fmt.Sprint(tc.wantWarnings) {
				t.Errorf("warnings = %q, want %q", w, tc.wantWarnings)
			}
		})
	}
}

func TestFitSearches(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("d%d.example", i)
	}
	long := strings.Repeat("x", 254)
	wide := make([]string, 10)
	for i := range wide {
		wide[i] = strings.Repeat(string(rune('a'+i)), 250) // 10*251-1 = 2509 chars
	}
	for _, tc := range []struct {
		name     string
		in       []string
		wantLen  int
		exceeded bool
	}{
		{"within limits", []string{"a", "b"}, 2, false},
		{"more than 32", many, 32, true},
		{"a path over 253 chars is dropped", []string{"a", long, "b"}, 2, true},
		{"line over 2048 chars is cut from the end", wide, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, w := fitSearches(append([]string(nil), tc.in...))
			if len(got) != tc.wantLen || (len(w) > 0) != tc.exceeded {
				t.Errorf("fitSearches: %d paths, warnings %v; want %d, exceeded %v", len(got), w, tc.wantLen, tc.exceeded)
			}
			if tc.exceeded && !strings.HasPrefix(w[0].message, "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ") {
				t.Errorf("message = %q", w[0].message)
			}
		})
	}
}

func TestWithDNSReadsHostResolvConf(t *testing.T) {
	read := func(name string) ([]byte, error) {
		if name != "/host/resolv.conf" {
			return nil, errors.New("open " + name + ": no such file or directory")
		}
		return []byte("nameserver 192.168.0.1\nsearch corp.example\n"), nil
	}
	rec := &fakeRecorder{}
	cfg := &runtimeapi.PodSandboxConfig{}
	pod := testPod(func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSDefault })
	if err := withDNS(pod, DNSOptions{ResolvConf: "/host/resolv.conf", ReadFile: read}, rec)(cfg); err != nil {
		t.Fatal(err)
	}
	assertProtoEqual(t, "dns", cfg.DnsConfig, &runtimeapi.DNSConfig{Servers: []string{"192.168.0.1"}, Searches: []string{"corp.example"}, Options: []string{}})

	// Like the kubelet, an unreadable resolv.conf fails the sandbox whatever
	// the policy.
	err := withDNS(testPod(), DNSOptions{ResolvConf: "/missing", ReadFile: read}, rec)(cfg)
	if err == nil || err.Error() != "open /missing: no such file or directory" {
		t.Errorf("err = %v", err)
	}

	// Warnings become Events on the pod.
	if err := withDNS(testPod(), DNSOptions{ResolvConf: "/host/resolv.conf", ReadFile: read}, rec)(cfg); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 || !strings.HasPrefix(rec.events[0], "MissingClusterDNS: ") {
		t.Errorf("events = %q", rec.events)
	}
}
