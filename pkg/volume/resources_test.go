package volume

import (
	"errors"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestTmpfsSize(t *testing.T) {
	mem := func(s string) v1.ResourceRequirements {
		return v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse(s)}}
	}
	pod := func(cs ...v1.ResourceRequirements) *v1.Pod {
		p := &v1.Pod{}
		for i, r := range cs {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: fmt.Sprint(i), Resources: r})
		}
		return p
	}
	node := resource.MustParse("8Gi")
	for _, tc := range []struct {
		name  string
		node  *resource.Quantity
		pod   *v1.Pod
		limit *resource.Quantity
		want  int64
	}{
		{"nothing known", nil, pod(v1.ResourceRequirements{}), nil, 0},
		{"node allocatable", &node, pod(v1.ResourceRequirements{}), nil, 8 << 30},
		{"pod limit when every container has one", &node, pod(mem("1Gi"), mem("2Gi")), nil, 3 << 30},
		{"no pod limit when one container has none", &node, pod(mem("1Gi"), v1.ResourceRequirements{}), nil, 8 << 30},
		{"sizeLimit smallest", &node, pod(mem("1Gi")), ptr(resource.MustParse("64Mi")), 64 << 20},
		{"sizeLimit above pod limit ignored", &node, pod(mem("1Gi")), ptr(resource.MustParse("2Gi")), 1 << 30},
		{"zero sizeLimit ignored", &node, pod(), ptr(resource.MustParse("0")), 8 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tmpfsSize(tc.node, tc.pod, tc.limit); got != tc.want {
				t.Errorf("tmpfsSize = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFailedMounts(t *testing.T) {
	a := &SetUpError{Volume: "a", Err: errors.New("x")}
	b := &SetUpError{Volume: "b", Err: errors.New("y")}
	err := errors.Join(a, fmt.Errorf("wrapped: %w", errors.Join(b)))
	got := FailedMounts(err)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("FailedMounts = %v", got)
	}
	if FailedMounts(nil) != nil {
		t.Error("FailedMounts(nil) not empty")
	}
	if a.Error() != `MountVolume.SetUp failed for volume "a" : x` {
		t.Errorf("message = %q", a.Error())
	}
}
