package criconfig

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const localhostLines = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

func TestHostsFile(t *testing.T) {
	aliases := []v1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}, {IP: "10.1.2.4", Hostnames: []string{"baz"}}}
	nodeHosts := []byte("127.0.0.1\tlocalhost\n192.168.1.5\tnode-1\n")
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Pod)
		podIPs  []string
		want    string
		wantErr string
	}{
		{"pod network: localhost and the pod's address", nil, []string{"10.88.0.5"},
			"# Kubernetes-managed hosts file.\n" + localhostLines + "10.88.0.5\tapp\n", ""},
		{"dual stack: one line per address", nil, []string{"10.88.0.5", "fd00::5"},
			"# Kubernetes-managed hosts file.\n" + localhostLines + "10.88.0.5\tapp\nfd00::5\tapp\n", ""},
		{"subdomain: the FQDN first", func(p *v1.Pod) { p.Spec.Hostname = "web-0"; p.Spec.Subdomain = "web" }, []string{"10.88.0.5"},
			"# Kubernetes-managed hosts file.\n" + localhostLines + "10.88.0.5\tweb-0.web.ns.svc.cluster.local\tweb-0\n", ""},
		{"host aliases", func(p *v1.Pod) { p.Spec.HostAliases = aliases }, []string{"10.88.0.5"},
			"# Kubernetes-managed hosts file.\n" + localhostLines + "10.88.0.5\tapp\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz\n", ""},
		{"host network: the node's file", func(p *v1.Pod) { p.Spec.HostNetwork = true }, nil,
			"# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n192.168.1.5\tnode-1\n", ""},
		{"host network with aliases", func(p *v1.Pod) { p.Spec.HostNetwork = true; p.Spec.HostAliases = aliases[1:] }, []string{"192.168.1.5"},
			"# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n192.168.1.5\tnode-1\n\n# Entries added by HostAliases.\n10.1.2.4\tbaz\n", ""},
		{"invalid hostname", func(p *v1.Pod) { p.Spec.Hostname = "Web_0" }, []string{"10.88.0.5"}, "", `pod Hostname "Web_0" is not a valid DNS label: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			if tc.mutate != nil {
				tc.mutate(pod)
			}
			got, err := HostsFile(pod, tc.podIPs, "cluster.local", nodeHosts)
			if tc.wantErr != "" {
				if err == nil || len(err.Error()) < len(tc.wantErr) || err.Error()[:len(tc.wantErr)] != tc.wantErr {
					t.Fatalf("err = %v, want %q...", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("HostsFile =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestShouldMountHostsFile(t *testing.T) {
	pod := testPod()
	if ShouldMountHostsFile(pod, nil) {
		t.Error("a pod-network pod without an address yet must get no hosts file")
	}
	if !ShouldMountHostsFile(pod, []string{"10.88.0.5"}) {
		t.Error("a pod with an address must get the hosts file")
	}
	pod.Spec.HostNetwork = true
	if !ShouldMountHostsFile(pod, nil) {
		t.Error("a host-network pod always gets the hosts file")
	}
}

func TestHostsFileMount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mounts []v1.VolumeMount
		want   bool
	}{
		{"mounted at /etc/hosts", nil, true},
		{"not when the container mounts a volume there", []v1.VolumeMount{{Name: "h", MountPath: "/etc/hosts"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts = tc.mounts })
			cfg, err := BuildContainerConfig(context.Background(), pod, &pod.Spec.Containers[0], ContainerOptions{
				Type: ContainerTypeRegular, ImageRef: "sha256:def", HostsFile: "/var/lib/agent/pods/uid/etc-hosts",
				Mounts: []*runtimeapi.Mount{{HostPath: "/vol", ContainerPath: "/data"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			var got *runtimeapi.Mount
			for _, m := range cfg.Mounts {
				if m.ContainerPath == EtcHostsPath {
					got = m
				}
			}
			if (got != nil) != tc.want {
				t.Fatalf("mounts = %v, hosts mount wanted: %v", cfg.Mounts, tc.want)
			}
			if got != nil && (got.HostPath != "/var/lib/agent/pods/uid/etc-hosts" || got.Readonly || cfg.Mounts[0].ContainerPath != "/data") {
				t.Errorf("mounts = %v: the hosts file, writable, after the volumes", cfg.Mounts)
			}
		})
	}
}
