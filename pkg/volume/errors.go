package volume

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// FailedMountReason is the reason of the Warning event the caller records
// for a *SetUpError, as the kubelet's.
const FailedMountReason = "FailedMount"

// SetUpError says why one volume of a pod could not be set up. Its message is
// the kubelet's FailedMount event message:
//
//	MountVolume.SetUp failed for volume "config" : configmap "app" not found
type SetUpError struct {
	// Volume is the pod volume's name.
	Volume string
	// Stale is true when the volume was set up by an earlier call and only
	// refreshing it failed: it keeps its previous content and is still in
	// the PodVolumes returned with this error.
	Stale bool
	// Err is the cause, worded as the kubelet words it.
	Err error
}

// Error returns the FailedMount event message.
func (e *SetUpError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

// Unwrap returns the cause.
func (e *SetUpError) Unwrap() error { return e.Err }

// FailedMounts returns every *SetUpError in err, which is what SetUp
// returns: one event per failed volume, as the kubelet records them.
func FailedMounts(err error) []*SetUpError {
	var out []*SetUpError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if se, ok := err.(*SetUpError); ok {
			out = append(out, se)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// ErrUnsupported is wrapped by the error for a volume kind this package does
// not set up (persistentVolumeClaim, csi, nfs, ...).
var ErrUnsupported = errors.New("volume kind not supported by this node agent")

// unsupportedKindError names the kind of a volume SetUp cannot handle; the
// *SetUpError around it names the volume.
func unsupportedKindError(vol *v1.Volume) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, volumeKind(&vol.VolumeSource))
}

// volumeKind returns the JSON name of the one source set in src
// ("persistentVolumeClaim", "csi", ...), or "unknown" when none is.
func volumeKind(src *v1.VolumeSource) string {
	rv := reflect.ValueOf(src).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rv.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "unknown"
}
