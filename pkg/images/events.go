package images

import v1 "k8s.io/api/core/v1"

// Event reasons, as the kubelet's (pkg/kubelet/events).
const (
	eventPulling           = "Pulling"
	eventPulled            = "Pulled"
	eventFailed            = "Failed"
	eventInspectFailed     = "InspectFailed"
	eventErrImageNeverPull = "ErrImageNeverPull"
	eventBackOff           = "BackOff"
)

// event records an Event on the container, when the caller named one.
func (p *Puller) event(ref *v1.ObjectReference, eventtype, reason, message string) {
	if ref == nil {
		return
	}
	// The message is data, never a format: runtime errors may hold '%'.
	p.recorder.Eventf(ref, eventtype, reason, "%s", message)
}
