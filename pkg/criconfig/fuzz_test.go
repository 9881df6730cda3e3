package criconfig

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fuzzPods are the seed pods of the builders' fuzz targets: the table
// tests' fixture, with every kind of container, env references, resources,
// a security context, ports and host namespaces.
func fuzzPods(f *testing.F) [][]byte {
	pods := []*v1.Pod{
		testPod(),
		testPod(func(p *v1.Pod) {
			always := v1.ContainerRestartPolicyAlways
			p.Spec.ShareProcessNamespace = ptr(true)
			p.Spec.HostNetwork = true
			p.Spec.Hostname, p.Spec.Subdomain = "web-0", "web"
			p.Spec.DNSConfig = &v1.PodDNSConfig{Searches: []string{"a.example"}, Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}}}
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox", RestartPolicy: &always,
				Ports: []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP}}}}
			p.Spec.Containers[0].Env = []v1.EnvVar{
				{Name: "A", Value: "$(B)x"},
				{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "MEM", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory"}}},
			}
			p.Spec.Containers[0].Resources = v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: q("100m"), v1.ResourceMemory: q("32Mi")},
				Limits:   v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("64Mi")},
			}
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(1000)),
				Capabilities:   &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}},
				SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}}
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{
				EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", Command: []string{"sh", "-c", "echo $(A)"}, TTY: true, Stdin: true},
				TargetContainerName:      "main",
			}}
		}),
	}
	var out [][]byte
	for _, p := range pods {
		b, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzBuildContainerConfig builds the config of each container of a pod
// decoded from fuzzed JSON: it must not panic, every error must be a
// CreateContainerConfigError, and a config must name the container and
// its attempt.
func FuzzBuildContainerConfig(f *testing.F) {
	for _, p := range fuzzPods(f) {
		f.Add(p, 0, int64(-1), false)
		f.Add(p, 3, int64(65532), true)
	}
	f.Fuzz(func(t *testing.T, podJSON []byte, restarts int, imageUID int64, cgroupV2 bool) {
		pod := &v1.Pod{}
		if err := json.Unmarshal(podJSON, pod); err != nil {
			t.Skip()
		}
		type target struct {
			typ ContainerType
			c   v1.Container
		}
		var targets []target
		for _, c := range pod.Spec.InitContainers {
			targets = append(targets, target{ContainerTypeInit, c})
		}
		for _, c := range pod.Spec.Containers {
			targets = append(targets, target{ContainerTypeRegular, c})
		}
		for _, ec := range pod.Spec.EphemeralContainers {
			targets = append(targets, target{ContainerTypeEphemeral, v1.Container(ec.EphemeralContainerCommon)})
		}
		opts := ContainerOptions{
			RestartCount: restarts, ImageRef: "sha256:abc",
			TerminationMessageHostPath: "/var/lib/agent/pods/uid-1/containers/x/1a2b", HostsFile: "/var/lib/agent/pods/uid-1/etc-hosts",
			PodIP: "10.88.0.5", PodIPs: []string{"10.88.0.5", "fd00::5"}, HostIP: "192.168.1.10", HostIPs: []string{"192.168.1.10"},
			NodeName: "node-1", TargetContainerID: "target-id",
			Sources:    &fakeSources{configMaps: map[string]map[string]string{"ns/cm": {"k": "v"}}},
			ServiceEnv: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
			Node:       NodeConfig{CgroupV2: cgroupV2, SwapController: cgroupV2, MemoryCapacity: 8 << 30, Allocatable: v1.ResourceList{v1.ResourceCPU: q("2")}, SeccompProfileRoot: "/var/lib/agent/seccomp"},
			Mounts:     []*runtimeapi.Mount{{HostPath: "/var/lib/agent/pods/uid-1/volumes/x", ContainerPath: "/data"}},
		}
		if imageUID >= 0 {
			opts.ImageUID = &imageUID
		} else {
			opts.ImageUsername = "nobody"
		}
		for _, tg := range targets {
			opts.Type = tg.typ
			cfg, err := BuildContainerConfig(context.Background(), pod, &tg.c, opts)
			if err != nil {
				if !errors.Is(err, ErrCreateContainerConfig) {
					t.Errorf("%s %q: error %v is not a CreateContainerConfigError", tg.typ, tg.c.Name, err)
				}
				continue
			}
			if cfg.GetMetadata().GetName() != tg.c.Name || cfg.GetMetadata().GetAttempt() != uint32(restarts) {
				t.Errorf("%s %q: metadata %v, want attempt %d", tg.typ, tg.c.Name, cfg.GetMetadata(), restarts)
			}
		}
	})
}

// FuzzBuildSandboxConfig builds the sandbox config of a pod decoded from
// fuzzed JSON, with a fuzzed host resolv.conf: it must not panic, and a
// config must carry the pod's identity.
func FuzzBuildSandboxConfig(f *testing.F) {
	for _, p := range fuzzPods(f) {
		f.Add(p, "nameserver 192.168.0.1\nsearch corp.example\noptions ndots:5\n", uint32(0), false)
		f.Add(p, "", uint32(2), true)
	}
	f.Fuzz(func(t *testing.T, podJSON []byte, resolvConf string, attempt uint32, cgroupV2 bool) {
		pod := &v1.Pod{}
		if err := json.Unmarshal(podJSON, pod); err != nil {
			t.Skip()
		}
		opts := SandboxOptions{
			Attempt: attempt, PodLogsDir: "/var/log/pods", CgroupParent: "/kubepods/besteffort/poduid-1",
			DNS: DNSOptions{
				ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", ResolvConf: "/etc/resolv.conf", NodeIPs: []string{"192.168.1.10"},
				ReadFile: func(string) ([]byte, error) { return []byte(resolvConf), nil },
			},
			Node:     NodeConfig{CgroupV2: cgroupV2},
			Recorder: &fakeRecorder{},
		}
		cfg, err := BuildSandboxConfig(pod, opts)
		if err != nil {
			return
		}
		if md := cfg.GetMetadata(); md.GetName() != pod.Name || md.GetNamespace() != pod.Namespace || md.GetUid() != string(pod.UID) || md.GetAttempt() != attempt {
			t.Errorf("metadata %v, want pod %s/%s uid %s attempt %d", md, pod.Namespace, pod.Name, pod.UID, attempt)
		}
	})
}
