// Package images makes sure a container's image is present in the container
// runtime before the container is created, honouring the container's
// imagePullPolicy the way the kubelet does: the same Waiting reasons and
// messages (ErrImagePull, ImagePullBackOff, ErrImageNeverPull,
// InvalidImageName, ImageInspectError), the same Events (Pulling, Pulled,
// Failed, BackOff, ErrImageNeverPull, InspectFailed) and the same per pod and
// image backoff (10s doubling to 5 minutes).
//
// Retry semantics: EnsureImage makes at most one pull attempt per call and
// never retries on its own. A failed pull returns ErrImagePull and opens a
// backoff window for that pod UID and image; calls inside the window return
// ImagePullBackOff at once, without touching the registry. Both errors carry
// RetryAfter, the time left in the window, so a level-triggered caller can
// requeue the pod then. The window doubles on each failure and starts over
// after twice the maximum (10 minutes) without one. A cancelled context is
// not a pull failure: it opens no window and records no Event.
//
// Pull policy Always pulls on every call, as the kubelet does on every
// container (re)start; the runtime resolves the tag and only fetches layers
// it lacks. Pulls of the same image by concurrent callers run in parallel
// (the kubelet's serializeImagePulls=false); nothing is queued here.
//
// Registry credentials come from the pod's image pull secrets only
// (kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg), matched
// against the image's registry as the kubelet's keyring matches them. When
// secrets match, each is tried in turn and the pull fails if all fail; only
// an image that no secret matches is pulled anonymously, as in the kubelet.
//
// It does not garbage-collect images, run credential provider plugins, read
// a node-wide docker config, or verify that a pod may use an image another
// pod pulled with other credentials (KubeletEnsureSecretPulledImages).
package images
