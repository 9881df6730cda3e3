package volume

import (
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestSupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  v1.VolumeSource
		want string // "" when supported
	}{
		{"emptyDir", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}, ""},
		{"emptyDir memory", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}, ""},
		{"emptyDir hugepages", v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: "HugePages-2Mi"}},
			"volume kind not supported by this node agent: emptyDir medium HugePages-2Mi"},
		{"hostPath", v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/tmp"}}, ""},
		{"configMap", v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}, ""},
		{"secret", v1.VolumeSource{Secret: &v1.SecretVolumeSource{}}, ""},
		{"downwardAPI", v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{}}, ""},
		{"projected token", v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}}}}, ""},
		{"projected trust bundle", v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Path: "b"}}}}},
			"volume kind not supported by this node agent: projected clusterTrustBundle source"},
		{"csi", v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "d"}}, "volume kind not supported by this node agent: csi"},
		{"nfs", v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}}, "volume kind not supported by this node agent: nfs"},
		{"pvc", v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}},
			"volume kind not supported by this node agent: persistentVolumeClaim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Supported(&v1.Volume{Name: "v", VolumeSource: tc.src})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Supported() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Supported() = %v, want %q wrapping ErrUnsupported", err, tc.want)
			}
		})
	}
}
