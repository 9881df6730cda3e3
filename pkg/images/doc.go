// Package images makes sure a container's image is present in the container
// runtime before the container is created, honouring the container's
// imagePullPolicy the way the kubelet does: the same Waiting reasons and
// messages (ErrImagePull, ImagePullBackOff, ErrImageNeverPull,
// InvalidImageName, ImageInspectError), the same Events (Pulling, Pulled,
// Failed, BackOff, ErrImageNeverPull, InspectFailed) and the same per pod and
// image backoff (10s doubling to 5 minutes).
//
// Retry semantics: EnsureImage makes at most one pull attempt per call and
// never retries on its own. A failed pull returns ErrImagePull (or the
// runtime's RegistryUnavailable or SignatureValidationFailed) and opens a
// backoff window for that pod UID and image; calls inside the window return
// ImagePullBackOff at once, with the last failure in the message, without
// touching the registry. The errors do not say when the window closes: the
// caller retries on its own schedule and gets ImagePullBackOff until then.
// The window doubles on each failure and starts over after twice the
// maximum (10 minutes) without one. A pull abandoned because the context
// was cancelled is not a failure: it opens no window, returns no *Error and
// records no Failed Event.
//
// Pull policy Always pulls on every call, as the kubelet does on every
// container (re)start; the runtime resolves the tag and only fetches layers
// it lacks.
//
// Puller pulls inline, in the caller's goroutine, bounded only by the
// caller's context; pulls of the same image by concurrent callers run in
// parallel (the kubelet's serializeImagePulls=false). Background, which the
// agent uses, wraps a Puller so that no pull holds its caller: what needs no
// registry (a present image under IfNotPresent or Never, one ImageStatus
// call; ErrImageNeverPull; an invalid name; an open backoff window) is
// answered at once as Puller answers it, and anything else returns a
// *PullingError (Waiting reason Pulling, `pulling image "X"`) at once while
// the pull runs in its own goroutine. One pull runs at a time per image and
// set of credentials (callers with the same ones join it; other images, or
// the same image with other credentials, pull in parallel), and each is
// bounded by a deadline (the agent's --image-pull-timeout): one that
// outlives it fails with ErrImagePull and opens the backoff window like any
// failed pull. When a pull ends, a callback is told the UIDs of the pods
// that waited (the agent re-syncs them) and each waiting container's next
// call returns the result. The pull's Events (Pulling, Pulled, Failed) are
// recorded once, on the container that started it. ForgetPod ends a pod's
// waits and cancels a pull no one waits for any more, with no Failed Event;
// on Puller and Background alike it drops the pod's backoff windows. The
// kubelet has no Pulling reason: its pulls hold the pod's sync, and the
// container shows ContainerCreating meanwhile.
//
// Registry credentials come from the pod's image pull secrets only
// (kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg), matched
// against the image's registry as the kubelet's keyring matches them. When
// secrets match, each is tried in turn and the pull fails if all fail; only
// an image that no secret matches is pulled anonymously, as in the kubelet.
// A malformed pull secret fails the call with ErrImagePull before any pull,
// and opens no backoff window.
//
// It does not garbage-collect images, run credential provider plugins, read
// a node-wide docker config, or verify that a pod may use an image another
// pod pulled with other credentials (KubeletEnsureSecretPulledImages).
package images
