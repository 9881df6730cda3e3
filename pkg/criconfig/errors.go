package criconfig

import "errors"

// ErrNotManaged is wrapped by ParseContainer when a CRI container lacks the
// labels that tie it to a pod, so no kubelet-compatible agent created it and
// the caller must leave it alone.
var ErrNotManaged = errors.New("not a pod's CRI object")

// ErrCreateContainerConfig is matched, with errors.Is, by every error
// BuildContainerConfig returns. The kubelet reports all of them the same
// way: the container waits with reason CreateContainerConfigError and the
// error's message, which therefore is the kubelet's, with no added context.
var ErrCreateContainerConfig = errors.New("CreateContainerConfigError")

// configError marks err as a CreateContainerConfigError without changing its
// message, which the caller shows to users as the kubelet words it.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }

func (e configError) Unwrap() []error { return []error{e.err, ErrCreateContainerConfig} }
