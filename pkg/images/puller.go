package images

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// The kubelet's image pull backoff: 10s, doubling up to 5 minutes.
const (
	InitialBackoff = 10 * time.Second
	MaxBackoff     = 300 * time.Second
)

// NewBackoff returns a backoff with the kubelet's image pull periods.
func NewBackoff() *flowcontrol.Backoff {
	return flowcontrol.NewBackOff(InitialBackoff, MaxBackoff)
}

// ImageService is the part of the CRI image service the puller calls
// (k8s.io/cri-client's remote image service satisfies it).
type ImageService interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
	PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
}

// Recorder emits Events (client-go's record.EventRecorder satisfies it).
type Recorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Puller ensures images are present before containers are created. It is
// safe for concurrent use.
type Puller struct {
	images   ImageService
	recorder Recorder
	backoff  *flowcontrol.Backoff

	// failures holds the last pull error per backoff key, as "Reason:
	// message", which the kubelet appends to "Back-off pulling image" in
	// the ImagePullBackOff message; pruned with the backoff's own entries.
	// Every backoff entry has one (both are written by recordFailure), so
	// ForgetPod finds a pod's entries here.
	failures sync.Map // string → string
}

// NewPuller returns a Puller. The backoff is shared by all pods, keyed by pod
// UID and image, and its clock times pulls too; nil means NewBackoff().
func NewPuller(images ImageService, recorder Recorder, backoff *flowcontrol.Backoff) *Puller {
	if backoff == nil {
		backoff = NewBackoff()
	}
	return &Puller{images: images, recorder: recorder, backoff: backoff}
}

// EnsureImage makes image present according to policy (empty: the API
// server's default for the image) and returns the image reference to create
// the container with: the runtime's image ID (ImageStatus's Id for a present
// image, PullImage's image ref after a pull; containerd gives the same ID).
// A pull runs inline, in the caller's goroutine, with no deadline but ctx's;
// Background runs them outside the caller instead.
//
// pod must not be nil. ref is the container the Events are about (fieldPath
// spec.containers{NAME}, spec.initContainers{NAME} or
// spec.ephemeralContainers{NAME}); nil records none. pullSecrets are the
// pod's image pull secrets, already fetched. On an image failure the error
// is an *Error whose Reason and message are the container's Waiting reason
// and message; a Warning Event "Failed" with "Error: REASON" has then been
// recorded as well, as the kubelet's container start does, so the caller
// must not record another. Any other error (a cancelled context) is
// returned wrapped, with no Event.
func (p *Puller) EnsureImage(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, image string, policy v1.PullPolicy, pullSecrets []v1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "image", image)
	ctx = klog.NewContext(ctx, logger)
	imageRef, plan, err := p.prepare(ctx, ref, pod, image, policy, pullSecrets, sandboxConfig)
	if plan != nil {
		imageRef, err = p.execute(ctx, plan, 0)
		if e := (*Error)(nil); errors.As(err, &e) {
			p.recordFailure(ctx, plan.backoffKey, e)
		}
	}
	p.failedEvent(ref, err)
	return imageRef, err
}

// prepare does what comes before a pull, none of which talks to a
// registry: it parses the image, asks the runtime whether it has it when the
// policy depends on that, applies the policy, reads the credentials and
// checks the pod's backoff window. It either answers (imageRef or error,
// plan nil) or returns the pull to make (plan non-nil, imageRef and error
// empty). It records the Events of the answers it gives, except the final
// "Error: REASON" one (failedEvent).
func (p *Puller) prepare(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, image string, policy v1.PullPolicy, pullSecrets []v1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (string, *pullPlan, error) {
	logger := klog.FromContext(ctx)
	name, err := parseImageName(image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", image, err)
		p.event(ref, v1.EventTypeWarning, eventInspectFailed, msg)
		logger.V(2).Info("Invalid image name", "err", err)
		return "", nil, &Error{reason: ReasonInvalidImageName, message: msg, err: err}
	}
	spec := &runtimeapi.ImageSpec{Image: withDefaultTag(image, name), Annotations: maps.Clone(pod.GetAnnotations())}
	if policy == "" {
		policy = defaultPullPolicy(name)
	}

	var id string
	if needsPresence(policy) {
		if id, err = p.imageID(ctx, spec); err != nil {
			// The kubelet prints the (empty) image ref here; the image is
			// what the reader needs.
			msg := fmt.Sprintf("Failed to inspect image %q: %v", image, err)
			p.event(ref, v1.EventTypeWarning, eventInspectFailed, msg)
			logger.V(2).Info("Failed to inspect image", "err", err)
			return "", nil, &Error{reason: ReasonImageInspectError, message: msg, err: err}
		}
	}
	switch decide(policy, id != "") {
	case actionUsePresent:
		p.event(ref, v1.EventTypeNormal, eventPulled, fmt.Sprintf("Container image %q already present on machine", image))
		logger.V(4).Info("Image already present", "imageRef", id)
		return id, nil, nil
	case actionNeverPull:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
		p.event(ref, v1.EventTypeWarning, eventErrImageNeverPull, msg)
		logger.V(2).Info("Image absent with pull policy Never")
		return "", nil, &Error{reason: ReasonErrImageNeverPull, message: msg}
	}
	plan, err := p.planPull(ctx, ref, pod, image, name, spec, pullSecrets, sandboxConfig)
	if err != nil {
		return "", nil, err
	}
	return "", plan, nil
}

// failedEvent records the Warning Event "Failed" with "Error: REASON" that
// the kubelet's container start records for an image failure.
func (p *Puller) failedEvent(ref *v1.ObjectReference, err error) {
	if e := (*Error)(nil); errors.As(err, &e) {
		p.event(ref, v1.EventTypeWarning, eventFailed, "Error: "+e.Reason())
	}
}

// ForgetPod drops the backoff windows and failure messages of a pod that is
// gone; a later pull for the same UID starts without a window.
func (p *Puller) ForgetPod(uid types.UID) {
	prefix := backoffKey(uid, "")
	p.failures.Range(func(k, _ any) bool {
		if key := k.(string); strings.HasPrefix(key, prefix) {
			p.backoff.Reset(key)
			p.failures.Delete(key)
		}
		return true
	})
}

// imageID returns the runtime's ID for the image, empty when absent.
func (p *Puller) imageID(ctx context.Context, spec *runtimeapi.ImageSpec) (string, error) {
	resp, err := p.images.ImageStatus(ctx, spec, false)
	if err != nil {
		return "", err
	}
	return resp.GetImage().GetId(), nil
}

// ImageUser returns the user an image runs as, for runAsNonRoot checks: its
// numeric uid, else its user name, else uid 0 (the runtime treats an image
// without a user as root). image is an image ID or name the runtime knows.
func (p *Puller) ImageUser(ctx context.Context, image string) (uid *int64, username string, err error) {
	resp, err := p.images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: image}, false)
	if err != nil {
		return nil, "", fmt.Errorf("image status of %q: %w", image, err)
	}
	if img := resp.GetImage(); img != nil {
		if img.GetUid() != nil {
			v := img.GetUid().GetValue()
			return &v, "", nil
		}
		if img.GetUsername() != "" {
			return nil, img.GetUsername(), nil
		}
	}
	return new(int64), "", nil
}
