package criconfig

import (
	"errors"
	"maps"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestContainerLabelsRoundTrip(t *testing.T) {
	preStop := &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/quit", Port: intstr.FromInt32(8080)}}
	ports := []v1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		c    v1.Container
		typ  ContainerType
		n    int
		want ContainerInfo
	}{
		{
			name: "minimal",
			pod:  testPod(),
			c:    v1.Container{Name: "main", Image: "busybox"},
			typ:  ContainerTypeRegular,
			want: ContainerInfo{PodName: "app", PodNamespace: "ns", PodUID: "uid-1", ContainerName: "main", Type: ContainerTypeRegular},
		},
		{
			name: "everything",
			pod: testPod(func(p *v1.Pod) {
				p.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
				p.DeletionGracePeriodSeconds = ptr(int64(5))
			}),
			c: v1.Container{
				Name: "debugger", Image: "busybox",
				TerminationMessagePath: "/tmp/msg", TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError,
				Lifecycle: &v1.Lifecycle{PreStop: preStop},
				Ports:     ports,
			},
			typ: ContainerTypeEphemeral,
			n:   3,
			want: ContainerInfo{
				PodName: "app", PodNamespace: "ns", PodUID: "uid-1", ContainerName: "debugger", Type: ContainerTypeEphemeral,
				RestartCount: 3, TerminationMessagePath: "/tmp/msg", TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError,
				PodTerminationGracePeriod: ptr(int64(30)), PodDeletionGracePeriod: ptr(int64(5)),
				PreStop: preStop, Ports: ports,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseContainer(ContainerLabels(tc.pod, tc.c.Name), ContainerAnnotations(tc.pod, &tc.c, tc.typ, tc.n))
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Hash = HashContainer(&tc.c)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseContainer:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestContainerAnnotationsAreKubelets(t *testing.T) {
	pod := testPod(func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr(int64(30)) })
	c := &v1.Container{
		Name: "main", Image: "busybox", TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: v1.TerminationMessageReadFile,
		Lifecycle: &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "sleep 1"}}}},
		Ports:     []v1.ContainerPort{{ContainerPort: 80, Protocol: v1.ProtocolTCP}},
	}
	got := ContainerAnnotations(pod, c, ContainerTypeInit, 2)
	want := map[string]string{
		"io.kubernetes.container.hash":                     HashContainer(c),
		"io.kubernetes.container.restartCount":             "2",
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
		"io.kubernetes.pod.terminationGracePeriod":         "30",
		"io.kubernetes.container.preStopHandler":           `{"exec":{"command":["sh","-c","sleep 1"]}}`,
		"io.kubernetes.container.ports":                    `[{"containerPort":80,"protocol":"TCP"}]`,
		"io.kubernetes.container.type":                     "init",
	}
	if !maps.Equal(got, want) {
		t.Errorf("ContainerAnnotations:\n got %v\nwant %v", got, want)
	}
	wantLabels := map[string]string{
		"io.kubernetes.pod.name": "app", "io.kubernetes.pod.namespace": "ns",
		"io.kubernetes.pod.uid": "uid-1", "io.kubernetes.container.name": "main",
	}
	if l := ContainerLabels(pod, "main"); !maps.Equal(l, wantLabels) {
		t.Errorf("ContainerLabels = %v, want %v (pod labels are not copied)", l, wantLabels)
	}
}

func TestParseContainerRequiresPodLabels(t *testing.T) {
	full := ContainerLabels(testPod(), "main")
	for _, missing := range []string{LabelPodName, LabelPodNamespace, LabelPodUID, LabelContainerName} {
		t.Run(missing, func(t *testing.T) {
			l := maps.Clone(full)
			delete(l, missing)
			_, err := ParseContainer(l, nil)
			if !errors.Is(err, ErrNotManaged) {
				t.Errorf("err = %v, want ErrNotManaged", err)
			}
		})
	}
}

func TestParseContainerToleratesMalformedAnnotations(t *testing.T) {
	got, err := ParseContainer(ContainerLabels(testPod(), "main"), map[string]string{
		AnnotationRestartCount:              "three",
		AnnotationPodTerminationGracePeriod: "soon",
		AnnotationPreStopHandler:            "{",
		AnnotationContainerPorts:            "[",
		AnnotationContainerType:             "ephemeral",
	})
	if err != nil {
		t.Fatalf("a malformed annotation must not hide the container: %v", err)
	}
	if got.RestartCount != 0 || got.PodTerminationGracePeriod != nil || got.PreStop != nil || got.Ports != nil {
		t.Errorf("malformed annotations should read as zero values, got %+v", got)
	}
	if got.Type != ContainerTypeEphemeral || got.ContainerName != "main" {
		t.Errorf("well-formed fields lost: %+v", got)
	}
}

func TestSandboxLabels(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		// A pod label may not shadow the agent's own.
		p.Labels[LabelPodName] = "impostor"
	})
	labels := SandboxLabels(pod)
	if labels[LabelPodName] != "app" || labels["app"] != "web" {
		t.Errorf("SandboxLabels = %v", labels)
	}
	annotations := SandboxAnnotations(pod)
	annotations["note"] = "changed"
	if pod.Annotations["note"] != "x" {
		t.Error("SandboxAnnotations aliases the pod's map")
	}

}

func TestHashContainer(t *testing.T) {
	base := v1.Container{Name: "main", Image: "busybox:1", Env: []v1.EnvVar{{Name: "A", Value: "1"}}}
	h := HashContainer(&base)
	if h != HashContainer(base.DeepCopy()) {
		t.Fatal("hash is not stable")
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*v1.Container)
		changes bool
	}{
		{"image", func(c *v1.Container) { c.Image = "busybox:2" }, true},
		{"name", func(c *v1.Container) { c.Name = "other" }, true},
		// Only mutable fields count, so a defaulted field added by an API
		// upgrade does not restart containers.
		{"env", func(c *v1.Container) { c.Env = nil }, false},
		{"defaulted field", func(c *v1.Container) { c.ImagePullPolicy = v1.PullIfNotPresent }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base.DeepCopy()
			tc.mutate(c)
			if changed := HashContainer(c) != h; changed != tc.changes {
				t.Errorf("hash changed = %v, want %v", changed, tc.changes)
			}
		})
	}
}
