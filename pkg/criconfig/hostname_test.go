package criconfig

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestSandboxHostname(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b" // 64 chars: cut at 63 leaves a trailing '-'
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Pod)
		want    string
		wantErr string
	}{
		{"pod name", nil, "app", ""},
		{"spec.hostname", func(p *v1.Pod) { p.Spec.Hostname = "web-0" }, "web-0", ""},
		{"host network uses the host's own name", func(p *v1.Pod) { p.Spec.HostNetwork = true; p.Spec.Hostname = "web-0" }, "", ""},
		{"long pod name is truncated without a trailing dash", func(p *v1.Pod) { p.Name = long }, strings.Repeat("a", 62), ""},
		{"invalid hostname", func(p *v1.Pod) { p.Spec.Hostname = "Web_0" }, "", `pod Hostname "Web_0" is not a valid DNS label: `},
		{"subdomain without FQDN", func(p *v1.Pod) { p.Spec.Hostname = "web-0"; p.Spec.Subdomain = "web" }, "web-0", ""},
		{"FQDN", func(p *v1.Pod) {
			p.Spec.Hostname = "web-0"
			p.Spec.Subdomain = "web"
			p.Spec.SetHostnameAsFQDN = ptr(true)
		}, "web-0.web.ns.svc.cluster.local", ""},
		{"FQDN without subdomain is the short name", func(p *v1.Pod) { p.Spec.SetHostnameAsFQDN = ptr(true) }, "app", ""},
		{"FQDN too long", func(p *v1.Pod) {
			p.Spec.Hostname = strings.Repeat("h", 40)
			p.Spec.Subdomain = "web"
			p.Spec.SetHostnameAsFQDN = ptr(true)
		}, "", "failed to construct FQDN from pod hostname and cluster domain, FQDN " + strings.Repeat("h", 40) + ".web.ns.svc.cluster.local is too long (64 characters is the max, 65 characters requested)"},
		{"invalid subdomain", func(p *v1.Pod) { p.Spec.Subdomain = "a.b" }, "", `pod Subdomain "a.b" is not a valid DNS label: `},
		{"hostnameOverride wins and takes no domain", func(p *v1.Pod) {
			p.Spec.Hostname = "web-0"
			p.Spec.Subdomain = "web"
			p.Spec.SetHostnameAsFQDN = ptr(true)
			p.Spec.HostnameOverride = ptr("custom.example.com")
		}, "custom.example.com", ""},
		{"invalid hostnameOverride", func(p *v1.Pod) { p.Spec.HostnameOverride = ptr("-bad") }, "", `pod HostnameOverride "-bad" is not a valid DNS subdomain: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			if tc.mutate != nil {
				tc.mutate(pod)
			}
			got, err := sandboxHostname(pod, "cluster.local")
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("sandboxHostname = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTruncateHostname(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{"short", "short", ""},
		{strings.Repeat("a", 63), strings.Repeat("a", 63), ""},
		{strings.Repeat("a", 62) + ".b", strings.Repeat("a", 62), ""},
		{strings.Repeat("-", 64), "", "hostname for pod \"p\" was invalid"},
	} {
		got, err := truncateHostname("p", tc.in)
		if !strings.HasPrefix(errString(err), tc.wantErr) || (tc.wantErr == "") != (err == nil) || got != tc.want {
			t.Errorf("truncateHostname(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
