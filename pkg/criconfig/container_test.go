package criconfig

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBuildContainerConfigEphemeral(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		p.Spec.EphemeralContainers = []v1.EphemeralContainer{{
			EphemeralContainerCommon: v1.EphemeralContainerCommon{
				Name:                     "debugger-x7",
				Image:                    "busybox:1.36",
				Command:                  []string{"sh", "-c"},
				Args:                     []string{"echo $(POD_NAME) $$(HOME) $(UNSET)"},
				Env:                      []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
				Stdin:                    true,
				TTY:                      true,
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: v1.TerminationMessageReadFile,
			},
			TargetContainerName: "main",
		}}
	})
	c := v1.Container(pod.Spec.EphemeralContainers[0].EphemeralContainerCommon)
	volume := &runtimeapi.Mount{HostPath: "/var/lib/agent/pods/uid-1/volumes/x", ContainerPath: "/data"}
	got, err := BuildContainerConfig(context.Background(), pod, &c, ContainerOptions{
		Type:                       ContainerTypeEphemeral,
		RestartCount:               0,
		ImageRef:                   "sha256:abc",
		Mounts:                     []*runtimeapi.Mount{volume},
		TerminationMessageHostPath: "/var/lib/agent/pods/uid-1/containers/debugger-x7/1a2b",
		TargetContainerID:          "target-id",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: "debugger-x7"},
		Image:       &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "busybox:1.36"},
		Command:     []string{"sh", "-c"},
		Args:        []string{"echo app $(HOME) $(UNSET)"},
		Envs:        []*runtimeapi.KeyValue{{Key: "POD_NAME", Value: []byte("app")}},
		Labels:      ContainerLabels(pod, "debugger-x7"),
		Annotations: ContainerAnnotations(pod, &c, ContainerTypeEphemeral, 0),
		Mounts: []*runtimeapi.Mount{volume, {
			HostPath: "/var/lib/agent/pods/uid-1/containers/debugger-x7/1a2b", ContainerPath: "/dev/termination-log",
		}},
		LogPath: "debugger-x7/0.log",
		Stdin:   true,
		Tty:     true,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, OomScoreAdj: 1000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD,
					Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "target-id",
				},
				RunAsUser:     &runtimeapi.Int64Value{Value: 0},
				Seccomp:       &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:   defaultMaskedPaths,
				ReadonlyPaths: defaultReadonlyPaths,
			},
		},
	}
	assertProtoEqual(t, "container config", got, want)
	if got.Annotations[AnnotationContainerType] != "ephemeral" {
		t.Errorf("type annotation = %q", got.Annotations[AnnotationContainerType])
	}
}

func TestBuildContainerConfigRegular(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		p.Spec.ShareProcessNamespace = ptr(true)
		p.Spec.Containers[0].WorkingDir = "/srv"
		p.Spec.Containers[0].Resources = v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: q("64Mi")}}
	})
	c := &pod.Spec.Containers[0]
	got, err := BuildContainerConfig(context.Background(), pod, c, ContainerOptions{
		Type: ContainerTypeRegular, RestartCount: 4, ImageRef: "sha256:def", ImageUID: ptr(int64(65532)),
		// A target is ignored when the pod already shares its PID namespace.
		TargetContainerID: "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Attempt != 4 || got.LogPath != "main/4.log" || got.WorkingDir != "/srv" {
		t.Errorf("attempt %d logPath %q workingDir %q", got.Metadata.Attempt, got.LogPath, got.WorkingDir)
	}
	if got.Command != nil || got.Args != nil {
		t.Errorf("command %q args %q: unset must stay nil so the image's entrypoint runs", got.Command, got.Args)
	}
	if len(got.Mounts) != 0 {
		t.Errorf("mounts = %v: no termination file, no mount", got.Mounts)
	}
	sc := got.Linux.SecurityContext
	if sc.NamespaceOptions.Pid != runtimeapi.NamespaceMode_POD || sc.NamespaceOptions.TargetId != "" {
		t.Errorf("pid namespace = %v", sc.NamespaceOptions)
	}
	if sc.RunAsUser.GetValue() != 65532 {
		t.Errorf("user = %v", sc.RunAsUser)
	}
	if got.Linux.Resources.MemoryLimitInBytes != 64<<20 {
		t.Errorf("memory limit = %d", got.Linux.Resources.MemoryLimitInBytes)
	}
	if got.Annotations[AnnotationRestartCount] != "4" || got.Annotations[AnnotationContainerType] != "regular" {
		t.Errorf("annotations = %v", got.Annotations)
	}
}

func TestBuildContainerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Pod)
		opts    ContainerOptions
		wantErr string
	}{
		{"missing configmap", func(p *v1.Pod) {
			p.Spec.Containers[0].EnvFrom = []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}}
		}, ContainerOptions{Sources: &fakeSources{}}, `configmap "x" not found`},
		{"runAsNonRoot with a root image", func(p *v1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = ptr(true) },
			ContainerOptions{}, `container has runAsNonRoot and image will run as root (pod: "app_ns(uid-1)", container: main)`},
		{"env is resolved before the policy check", func(p *v1.Pod) {
			p.Spec.SecurityContext.RunAsNonRoot = ptr(true)
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "s"}, Key: "k"}}}}
		}, ContainerOptions{Sources: &fakeSources{}}, `secret "s" not found`},
		{"localhost seccomp without profile", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost}}
		}, ContainerOptions{}, "localhostProfile must be set if seccompProfile type is Localhost."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(tc.mutate)
			_, err := BuildContainerConfig(context.Background(), pod, &pod.Spec.Containers[0], tc.opts)
			if errString(err) != tc.wantErr {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if !errors.Is(err, ErrCreateContainerConfig) {
				t.Errorf("err does not match ErrCreateContainerConfig")
			}
			if tc.opts.Sources != nil && !apierrors.IsNotFound(err) {
				t.Errorf("the source's NotFound is lost: %#v", err)
			}
		})
	}
}
