package volume

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Supported returns nil when SetUp can set up a volume of vol's kind, and
// otherwise an error wrapping ErrUnsupported that names the kind (and the
// projection or medium that is not supported). It looks at the kind only:
// a supported volume may still fail to set up (a missing configMap, a
// hostPath of the wrong type), which SetUp reports and retries.
//
// Node admission asks it, so that a pod whose volumes can never be set up
// here fails at once instead of waiting in ContainerCreating.
func Supported(vol *v1.Volume) error {
	switch src := vol.VolumeSource; {
	case src.EmptyDir != nil:
		m := src.EmptyDir.Medium
		if m == v1.StorageMediumHugePages || strings.HasPrefix(string(m), string(v1.StorageMediumHugePagesPrefix)) {
			return fmt.Errorf("%w: emptyDir medium %s", ErrUnsupported, m)
		}
		return nil
	case src.HostPath != nil, src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil:
		return nil
	case src.Projected != nil:
		for _, s := range src.Projected.Sources {
			switch {
			case s.ClusterTrustBundle != nil:
				return fmt.Errorf("%w: projected clusterTrustBundle source", ErrUnsupported)
			case s.PodCertificate != nil:
				return fmt.Errorf("%w: projected podCertificate source", ErrUnsupported)
			}
		}
		return nil
	}
	return unsupportedKindError(vol)
}
