package images

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// pullPlan is a pull EnsureImage decided to make: the image is to be pulled
// and the pod is not in backoff for it.
type pullPlan struct {
	// ref is the container the pull's Events are about (nil: none).
	ref *v1.ObjectReference
	// image is as written in the pod spec: Events, messages and the
	// backoff key use it.
	image         string
	spec          *runtimeapi.ImageSpec
	creds         []credential
	sandboxConfig *runtimeapi.PodSandboxConfig
	// backoffKey is the pod's window for this image.
	backoffKey string
}

// planPull reads the credentials for the image and, unless a recent failure
// for this pod and image holds it in backoff, returns the pull to make.
func (p *Puller) planPull(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, image string, name imageName, spec *runtimeapi.ImageSpec, pullSecrets []v1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (*pullPlan, error) {
	logger := klog.FromContext(ctx)
	creds, err := credentialsFromSecrets(pullSecrets)
	if err != nil {
		logger.V(2).Info("Unable to read image pull secrets", "err", err)
		return nil, &Error{reason: ReasonErrImagePull, message: err.Error(), err: err}
	}
	creds = matchCredentials(creds, name.repository())

	key := backoffKey(pod.GetUID(), image)
	if p.backoff.IsInBackOffSinceUpdate(key, p.backoff.Clock.Now()) {
		msg := fmt.Sprintf("Back-off pulling image %q", image)
		p.event(ref, v1.EventTypeNormal, eventBackOff, msg)
		if last, ok := p.failures.Load(key); ok {
			// The cause belongs in the Waiting message, not in the Event.
			msg = fmt.Sprintf("%s: %s", msg, last)
		}
		logger.V(3).Info("Image pull in back-off")
		return nil, &Error{reason: ReasonImagePullBackOff, message: msg}
	}
	return &pullPlan{ref: ref, image: image, spec: spec, creds: creds, sandboxConfig: sandboxConfig, backoffKey: key}, nil
}

// execute makes the pull: the Pulling Event, the pull, then the Pulled or
// the Failed Event. timeout > 0 bounds the PullImage calls (all credentials
// together); a pull that outlives it is a failure like any other. A failure
// is returned as an *Error, whose backoff window the caller opens with
// recordFailure (for one pod or several). A pull abandoned because ctx ended
// is no failure: it records no Failed Event and returns a plain error
// wrapping ctx's cause.
func (p *Puller) execute(ctx context.Context, plan *pullPlan, timeout time.Duration) (string, error) {
	logger := klog.FromContext(ctx)
	clock := p.backoff.Clock
	image, ref := plan.image, plan.ref

	p.event(ref, v1.EventTypeNormal, eventPulling, fmt.Sprintf("Pulling image %q", image))
	logger.V(2).Info("Started pulling image", "pullSecrets", secretNames(plan.creds), "timeout", timeout)
	start := clock.Now()
	pullCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		pullCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	imageRef, err := p.pullWith(pullCtx, plan.spec, authConfigs(plan.creds), plan.sandboxConfig)
	if err != nil {
		if ctx.Err() != nil {
			// Abandoned, not failed: the pod or the agent is going away.
			logger.V(4).Info("Image pull abandoned", "err", err, "cause", context.Cause(ctx))
			return "", fmt.Errorf("pull of image %q abandoned: %w", image, context.Cause(ctx))
		}
		if pullCtx.Err() != nil {
			err = fmt.Errorf("pull did not finish within %v: %w", timeout, err)
		}
		p.event(ref, v1.EventTypeWarning, eventFailed, fmt.Sprintf("Failed to pull image %q: %v", image, err))
		reason, msg := classifyPullError(image, err)
		logger.V(2).Info("Failed to pull image", "err", err)
		return "", &Error{reason: reason, message: msg, err: err}
	}
	size := p.imageSize(ctx, plan.spec)
	// Pulls are never queued here, so the time including waiting is the
	// pull's own.
	took := clock.Since(start).Truncate(time.Millisecond)
	p.event(ref, v1.EventTypeNormal, eventPulled, fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.", image, took, took, size))
	logger.V(2).Info("Pulled image", "imageRef", imageRef, "duration", took, "size", size)
	p.backoff.GC()
	p.pruneFailures()
	return imageRef, nil
}

// recordFailure opens the backoff window key (a pod and an image; doubled
// if one was open before) after the pull failure e, whose reason and message
// the ImagePullBackOff message repeats while the window lasts.
func (p *Puller) recordFailure(ctx context.Context, key string, e *Error) {
	p.backoff.Next(key, p.backoff.Clock.Now())
	p.failures.Store(key, e.reason+": "+e.message)
	klog.FromContext(ctx).V(4).Info("Image pull backoff", "key", key, "backoff", p.backoff.Get(key))
}

// pullWith tries each credential until one works; with none, it pulls
// anonymously. The error joins every attempt's, as the kubelet's does.
func (p *Puller) pullWith(ctx context.Context, spec *runtimeapi.ImageSpec, auths []*runtimeapi.AuthConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	if len(auths) == 0 {
		return p.images.PullImage(ctx, spec, nil, sandboxConfig)
	}
	var errs []error
	for _, auth := range auths {
		imageRef, err := p.images.PullImage(ctx, spec, auth, sandboxConfig)
		if err == nil {
			return imageRef, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return "", utilerrors.NewAggregate(errs)
}

// imageSize is the pulled image's size for the Pulled event; best effort.
func (p *Puller) imageSize(ctx context.Context, spec *runtimeapi.ImageSpec) uint64 {
	resp, err := p.images.ImageStatus(ctx, spec, false)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Unable to get the size of a pulled image", "err", err)
		return 0
	}
	return resp.GetImage().GetSize()
}

// classifyPullError maps a pull error to the Waiting reason and message. The
// runtime marks two causes with a prefix of the error text, since gRPC
// errors cannot be matched with errors.Is.
func classifyPullError(image string, err error) (reason, message string) {
	text := err.Error()
	switch {
	case strings.HasPrefix(text, ReasonRegistryUnavailable):
		return ReasonRegistryUnavailable, fmt.Sprintf("image pull failed for %s because the registry is unavailable%s",
			image, strings.TrimPrefix(text, ReasonRegistryUnavailable))
	case strings.HasPrefix(text, ReasonSignatureValidationFailed):
		return ReasonSignatureValidationFailed, fmt.Sprintf("image pull failed for %s because the signature validation failed%s",
			image, strings.TrimPrefix(text, ReasonSignatureValidationFailed))
	}
	return ReasonErrImagePull, text
}

// backoffKey is the kubelet's: one window per pod and image as written.
func backoffKey(podUID types.UID, image string) string {
	return fmt.Sprintf("%s_%s", podUID, image)
}

func secretNames(creds []credential) []string {
	names := make([]string, 0, len(creds))
	for _, c := range creds {
		names = append(names, c.secret)
	}
	return names
}

// pruneFailures drops messages whose backoff entry the backoff's GC removed,
// so that pods that went away do not keep them forever.
func (p *Puller) pruneFailures() {
	p.failures.Range(func(key, _ any) bool {
		if p.backoff.Get(key.(string)) == 0 {
			p.failures.Delete(key)
		}
		return true
	})
}
