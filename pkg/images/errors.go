package images

import "fmt"

// Container Waiting reasons for image failures, as the kubelet's.
const (
	// ReasonErrImagePull: the pull failed.
	ReasonErrImagePull = "ErrImagePull"
	// ReasonImagePullBackOff: an earlier pull of this image for this pod
	// failed and the backoff window is still open.
	ReasonImagePullBackOff = "ImagePullBackOff"
	// ReasonErrImageNeverPull: the policy is Never and the image is absent.
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	// ReasonInvalidImageName: the image reference does not parse.
	ReasonInvalidImageName = "InvalidImageName"
	// ReasonImageInspectError: the runtime could not say whether the image
	// is present.
	ReasonImageInspectError = "ImageInspectError"
	// ReasonRegistryUnavailable: the runtime reported the registry
	// unreachable (CRI error prefix RegistryUnavailable).
	ReasonRegistryUnavailable = "RegistryUnavailable"
	// ReasonSignatureValidationFailed: the runtime rejected the image's
	// signature (CRI error prefix SignatureValidationFailed).
	ReasonSignatureValidationFailed = "SignatureValidationFailed"
	// ReasonPulling: Background is pulling the image; not a failure. The
	// kubelet has no such Waiting reason (its pulls block the pod's sync).
	ReasonPulling = "Pulling"
)

// Error is an image failure that a container status shows as Waiting: Reason
// is the Waiting reason and Error the Waiting message, both worded as the
// kubelet words them. Find it with errors.As.
type Error struct {
	reason  string
	message string
	err     error
}

// Error returns the message for the container's Waiting state.
func (e *Error) Error() string { return e.message }

// Reason returns the container Waiting reason, one of the Reason constants.
func (e *Error) Reason() string { return e.reason }

// Unwrap returns the underlying cause (the runtime's or the parser's
// error), if any.
func (e *Error) Unwrap() error { return e.err }

// PullingError is Background's answer while the image is being pulled: the
// container waits with Reason Pulling and the message `pulling image "X"`.
// It is no failure: no Event goes with it and no backoff window opens. Find
// it with errors.As.
type PullingError struct {
	// Image is the image as written in the pod spec.
	Image string
}

// Error returns the message for the container's Waiting state.
func (e *PullingError) Error() string { return fmt.Sprintf("pulling image %q", e.Image) }

// Reason returns ReasonPulling.
func (e *PullingError) Reason() string { return ReasonPulling }
