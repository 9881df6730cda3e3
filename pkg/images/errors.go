package images

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
