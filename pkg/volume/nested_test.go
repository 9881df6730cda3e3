package volume

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestNestedMountPoints(t *testing.T) {
	mounts := func(vms ...v1.VolumeMount) *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", VolumeMounts: vms}}}}
	}
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		want    []string
		wantErr string
	}{
		{"none", mounts(v1.VolumeMount{Name: "cfg", MountPath: "/etc/app"}, v1.VolumeMount{Name: "x", MountPath: "/etc/other"}), nil, ""},
		{"one below", mounts(v1.VolumeMount{Name: "cfg", MountPath: "/etc/app"}, v1.VolumeMount{Name: "x", MountPath: "/etc/app/data"}), []string{"data"}, ""},
		{"double nesting left to the middle one", mounts(
			v1.VolumeMount{Name: "cfg", MountPath: "/a"}, v1.VolumeMount{Name: "x", MountPath: "/a/b/c"}, v1.VolumeMount{Name: "y", MountPath: "/a/b/c/d"}), []string{"b/c"}, ""},
		{"sibling prefix is not nested", mounts(v1.VolumeMount{Name: "cfg", MountPath: "/a"}, v1.VolumeMount{Name: "x", MountPath: "/ab"}), nil, ""},
		{"escaping mount path", mounts(v1.VolumeMount{Name: "cfg", MountPath: "../a"}), nil, "invalid container mount point ../a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nestedMountPoints("cfg", tc.pod)
			if !errContains(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Errorf("nestedMountPoints = %q, %v; want %q, %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPodFSUser(t *testing.T) {
	sc := func(uid int64) *v1.SecurityContext { return &v1.SecurityContext{RunAsUser: &uid} }
	for _, tc := range []struct {
		name string
		pod  v1.PodSpec
		want *int64
	}{
		{"no users", v1.PodSpec{Containers: []v1.Container{{Name: "a"}}}, nil},
		{"pod level", v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: ptr[int64](7)}, Containers: []v1.Container{{Name: "a"}, {Name: "b"}}}, ptr[int64](7)},
		{"same in every container", v1.PodSpec{InitContainers: []v1.Container{{Name: "i", SecurityContext: sc(5)}}, Containers: []v1.Container{{Name: "a", SecurityContext: sc(5)}}}, ptr[int64](5)},
		{"containers differ", v1.PodSpec{Containers: []v1.Container{{Name: "a", SecurityContext: sc(5)}, {Name: "b", SecurityContext: sc(6)}}}, nil},
		{"one container without a user", v1.PodSpec{Containers: []v1.Container{{Name: "a", SecurityContext: sc(5)}, {Name: "b"}}}, nil},
		{"ephemeral container differs", v1.PodSpec{
			SecurityContext:     &v1.PodSecurityContext{RunAsUser: ptr[int64](7)},
			Containers:          []v1.Container{{Name: "a"}},
			EphemeralContainers: []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg", SecurityContext: sc(0)}}},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podFSUser(&v1.Pod{Spec: tc.pod})
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("podFSUser = %v, want %v", got, tc.want)
			}
		})
	}
}
