package criconfig

import (
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestVerifyRunAsNonRoot(t *testing.T) {
	nonRoot := func(p *v1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptr(true) }
	for _, tc := range []struct {
		name     string
		mutate   func(*v1.Pod)
		uid      *int64
		username string
		wantErr  string
	}{
		{"not asked", nil, ptr(int64(0)), "", ""},
		{"image root", nonRoot, ptr(int64(0)), "", `container has runAsNonRoot and image will run as root (pod: "app_ns(uid-1)", container: main)`},
		{"image without user is root", nonRoot, nil, "", `container has runAsNonRoot and image will run as root (pod: "app_ns(uid-1)", container: main)`},
		{"image non-root", nonRoot, ptr(int64(1000)), "", ""},
		{"image user name", nonRoot, nil, "nobody", `container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: "app_ns(uid-1)", container: main)`},
		{"image uid out of range", nonRoot, ptr(int64(1 << 40)), "", "container has runAsNonRoot and image has an invalid user id (1099511627776). (Must be 1-(2147483647)): "},
		{"runAsUser root", func(p *v1.Pod) { nonRoot(p); p.Spec.SecurityContext.RunAsUser = ptr(int64(0)) }, ptr(int64(1000)), "",
			`container's runAsUser breaks non-root policy (pod: "app_ns(uid-1)", container: main)`},
		{"runAsUser overrides a root image", func(p *v1.Pod) { nonRoot(p); p.Spec.SecurityContext.RunAsUser = ptr(int64(1000)) }, ptr(int64(0)), "", ""},
		{"container runAsUser wins over pod's", func(p *v1.Pod) {
			nonRoot(p)
			p.Spec.SecurityContext.RunAsUser = ptr(int64(1000))
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsUser: ptr(int64(0))}
		}, ptr(int64(1000)), "", `container's runAsUser breaks non-root policy`},
		{"container may lift the pod's policy", func(p *v1.Pod) {
			nonRoot(p)
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsNonRoot: ptr(false)}
		}, ptr(int64(0)), "", ""},
		{"container sets it alone", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsNonRoot: ptr(true)}
		}, ptr(int64(0)), "", "container has runAsNonRoot and image will run as root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			uid, username := imageUser(tc.uid, tc.username)
			err := verifyRunAsNonRoot(p, &p.Spec.Containers[0], uid, username)
			if tc.wantErr == "" && err != nil || !strings.HasPrefix(errString(err), tc.wantErr) {
				t.Errorf("err = %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
}

func TestSeccompProfile(t *testing.T) {
	rd := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	unconfined := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	localhost := func(p string) *v1.SeccompProfile {
		return &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: &p}
	}
	for _, tc := range []struct {
		name      string
		pod       *v1.SeccompProfile
		container *v1.SeccompProfile
		want      *runtimeapi.SecurityProfile
		wantErr   string
	}{
		{name: "none", want: unconfined},
		{name: "pod RuntimeDefault", pod: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}, want: rd},
		{name: "container wins", pod: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}, container: &v1.SeccompProfile{Type: v1.SeccompProfileTypeUnconfined}, want: unconfined},
		{name: "localhost", pod: localhost("profiles/audit.json"),
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/var/lib/kubelet/seccomp/profiles/audit.json"}},
		{name: "localhost without profile", container: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost}, wantErr: "localhostProfile must be set if seccompProfile type is Localhost."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seccompProfile(&v1.PodSecurityContext{SeccompProfile: tc.pod}, &v1.SecurityContext{SeccompProfile: tc.container}, "/var/lib/kubelet/seccomp")
			if errString(err) != tc.wantErr {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err == nil {
				assertProtoEqual(t, "profile", got, tc.want)
			}
		})
	}
}

func TestAppArmorProfile(t *testing.T) {
	name := "k8s-deny-write"
	for _, tc := range []struct {
		name           string
		mutate         func(*v1.Pod)
		want           *runtimeapi.SecurityProfile
		wantDeprecated string
	}{
		{"none", nil, nil, ""},
		{"pod field", func(p *v1.Pod) {
			p.Spec.SecurityContext.AppArmorProfile = &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}
		}, &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "runtime/default"},
		{"annotation beats pod field", func(p *v1.Pod) {
			p.Spec.SecurityContext.AppArmorProfile = &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}
			p.Annotations["container.apparmor.security.beta.kubernetes.io/main"] = "localhost/" + name
		}, &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: name}, "localhost/" + name},
		{"container field beats all", func(p *v1.Pod) {
			p.Annotations["container.apparmor.security.beta.kubernetes.io/main"] = "runtime/default"
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AppArmorProfile: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined}}
		}, &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "unconfined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			got, deprecated, err := appArmorProfile(p, &p.Spec.Containers[0])
			if err != nil {
				t.Fatal(err)
			}
			if deprecated != tc.wantDeprecated {
				t.Errorf("deprecated = %q, want %q", deprecated, tc.wantDeprecated)
			}
			if (got == nil) != (tc.want == nil) || got != nil && !protoEqual(got, tc.want) {
				t.Errorf("profile = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContainerSecurityContext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mutate   func(*v1.Pod)
		uid      *int64
		username string
		check    func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext)
	}{
		{"image uid becomes the user", nil, ptr(int64(1000)), "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.RunAsUser.GetValue() != 1000 || sc.RunAsUsername != "" {
				t.Errorf("user = %v/%q", sc.RunAsUser, sc.RunAsUsername)
			}
		}},
		{"image without user runs as uid 0 explicitly", nil, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.RunAsUser == nil || sc.RunAsUser.Value != 0 {
				t.Errorf("RunAsUser = %v, want 0", sc.RunAsUser)
			}
		}},
		{"image user name", nil, nil, "www-data", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.RunAsUser != nil || sc.RunAsUsername != "www-data" {
				t.Errorf("user = %v/%q", sc.RunAsUser, sc.RunAsUsername)
			}
		}},
		{"pod user and group, container user wins", func(p *v1.Pod) {
			p.Spec.SecurityContext.RunAsUser = ptr(int64(1000))
			p.Spec.SecurityContext.RunAsGroup = ptr(int64(3000))
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsUser: ptr(int64(2000))}
		}, nil, "www-data", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.RunAsUser.GetValue() != 2000 || sc.RunAsGroup.GetValue() != 3000 || sc.RunAsUsername != "" {
				t.Errorf("user = %v group %v name %q", sc.RunAsUser, sc.RunAsGroup, sc.RunAsUsername)
			}
		}},
		{"container fields", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{
				Privileged:               ptr(true),
				ReadOnlyRootFilesystem:   ptr(true),
				AllowPrivilegeEscalation: ptr(false),
				Capabilities:             &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN", "SYS_PTRACE"}, Drop: []v1.Capability{"ALL"}},
				SELinuxOptions:           &v1.SELinuxOptions{Level: "s0:c1"},
			}
		}, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if !sc.Privileged || !sc.ReadonlyRootfs || !sc.NoNewPrivs {
				t.Errorf("privileged %v readonly %v noNewPrivs %v", sc.Privileged, sc.ReadonlyRootfs, sc.NoNewPrivs)
			}
			assertProtoEqual(t, "caps", sc.Capabilities, &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "SYS_PTRACE"}, DropCapabilities: []string{"ALL"}})
			assertProtoEqual(t, "selinux", sc.SelinuxOptions, &runtimeapi.SELinuxOption{Level: "s0:c1"})
			// Sent even when privileged: the runtime drops them.
			if len(sc.MaskedPaths) != len(defaultMaskedPaths) || len(sc.ReadonlyPaths) != len(defaultReadonlyPaths) {
				t.Errorf("masked %v readonly %v", sc.MaskedPaths, sc.ReadonlyPaths)
			}
		}},
		{"escalation allowed or unset keeps setuid working", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AllowPrivilegeEscalation: ptr(true)}
		}, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.NoNewPrivs || sc.Capabilities != nil {
				t.Errorf("noNewPrivs %v caps %v", sc.NoNewPrivs, sc.Capabilities)
			}
		}},
		{"default procMount masks", nil, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if !slices.Contains(sc.MaskedPaths, "/proc/kcore") || !slices.Contains(sc.ReadonlyPaths, "/proc/sys") {
				t.Errorf("masked %v readonly %v", sc.MaskedPaths, sc.ReadonlyPaths)
			}
		}},
		{"unmasked procMount", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{ProcMount: ptr(v1.UnmaskedProcMount)}
		}, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if len(sc.MaskedPaths) != 0 || len(sc.ReadonlyPaths) != 0 {
				t.Errorf("masked %v readonly %v", sc.MaskedPaths, sc.ReadonlyPaths)
			}
		}},
		{"groups: fsGroup first, policy", func(p *v1.Pod) {
			p.Spec.SecurityContext.FSGroup = ptr(int64(2000))
			p.Spec.SecurityContext.SupplementalGroups = []int64{4000, 5000}
			p.Spec.SecurityContext.SupplementalGroupsPolicy = ptr(v1.SupplementalGroupsPolicyStrict)
		}, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if got := sc.SupplementalGroups; len(got) != 3 || got[0] != 2000 || got[1] != 4000 || got[2] != 5000 {
				t.Errorf("groups = %v", got)
			}
			if sc.SupplementalGroupsPolicy != runtimeapi.SupplementalGroupsPolicy_Strict {
				t.Errorf("policy = %v", sc.SupplementalGroupsPolicy)
			}
		}},
		{"seccomp from the pod", func(p *v1.Pod) {
			p.Spec.SecurityContext.SeccompProfile = &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}
		}, nil, "", func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			assertProtoEqual(t, "seccomp", sc.Seccomp, &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			uid, username := imageUser(tc.uid, tc.username)
			sc, err := containerSecurityContext(p, &p.Spec.Containers[0], uid, username, "", NodeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, sc)
		})
	}
}

func TestContainerSecurityContextErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Pod)
		wantErr string
	}{
		{"unknown groups policy", func(p *v1.Pod) {
			p.Spec.SecurityContext.SupplementalGroupsPolicy = ptr(v1.SupplementalGroupsPolicy("Odd"))
		},
			"unsupported supplementalGroupsPolicy: Odd"},
		{"localhost apparmor without name", func(p *v1.Pod) {
			p.Spec.SecurityContext.AppArmorProfile = &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeLocalhost}
		}, "missing localhost apparmor profile name"},
		{"user namespace", func(p *v1.Pod) { p.Spec.HostUsers = ptr(false) }, errUserNamespaces.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod(tc.mutate)
			_, err := containerSecurityContext(p, &p.Spec.Containers[0], nil, "", "", NodeConfig{})
			if errString(err) != tc.wantErr {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSandboxSecurityContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*v1.Pod)
		want   *runtimeapi.LinuxSandboxSecurityContext
	}{
		{"defaults", nil, &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}},
		{"pod settings; pod seccomp does not apply to the sandbox", func(p *v1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.ShareProcessNamespace = ptr(true)
			p.Spec.SecurityContext = &v1.PodSecurityContext{
				RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(3000)), FSGroup: ptr(int64(2000)), SupplementalGroups: []int64{4000},
				SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeUnconfined},
				SELinuxOptions: &v1.SELinuxOptions{Type: "spc_t"},
			}
		}, &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions:   &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD},
			RunAsUser:          &runtimeapi.Int64Value{Value: 1000},
			RunAsGroup:         &runtimeapi.Int64Value{Value: 3000},
			SupplementalGroups: []int64{2000, 4000},
			SelinuxOptions:     &runtimeapi.SELinuxOption{Type: "spc_t"},
			Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}},
		{"privileged init container", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", SecurityContext: &v1.SecurityContext{Privileged: ptr(true)}}}
		}, &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			Privileged:       true,
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}},
		{"nil pod security context", func(p *v1.Pod) { p.Spec.SecurityContext = nil; p.Spec.HostIPC = true }, &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_NODE},
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			got, err := sandboxSecurityContext(p)
			if err != nil {
				t.Fatal(err)
			}
			assertProtoEqual(t, "security context", got, tc.want)
		})
	}
}

func TestHasPrivilegedContainer(t *testing.T) {
	priv := &v1.SecurityContext{Privileged: ptr(true)}
	for _, tc := range []struct {
		name   string
		mutate func(*v1.Pod)
		want   bool
	}{
		{"none", nil, false},
		{"explicitly not", func(p *v1.Pod) { p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr(false)} }, false},
		{"regular", func(p *v1.Pod) { p.Spec.Containers[0].SecurityContext = priv }, true},
		{"init", func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{SecurityContext: priv}} }, true},
		{"ephemeral", func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{SecurityContext: priv}}}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			if got := hasPrivilegedContainer(p); got != tc.want {
				t.Errorf("= %v, want %v", got, tc.want)
			}
		})
	}
}
