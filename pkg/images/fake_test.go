package images

import (
	"context"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeImageService mirrors k8s.io/cri-api/pkg/apis/testing's
// FakeImageService (images by name, queued errors per method, a call log).
// That one is not used because it pulls in testify, which go.mod does not
// list.
type fakeImageService struct {
	mu     sync.Mutex
	images map[string]*runtimeapi.Image
	errs   map[string][]error
	size   uint64
	called []string
	pulls  []pullCall
	// onPull, when set, runs at the start of every PullImage, outside the
	// lock; a non-nil error fails that pull.
	onPull func(ctx context.Context) error
}

type pullCall struct {
	image       string
	annotations map[string]string
	auth        *runtimeapi.AuthConfig
}

func newFakeImageService(present ...string) *fakeImageService {
	f := &fakeImageService{images: map[string]*runtimeapi.Image{}, errs: map[string][]error{}, size: 1234}
	for _, name := range present {
		f.images[name] = f.makeImage(name)
	}
	return f
}

func (f *fakeImageService) makeImage(name string) *runtimeapi.Image {
	return &runtimeapi.Image{Id: "sha256:id-of-" + name, RepoTags: []string{name}, Size: f.size}
}

// injectError queues err for the next call of method.
func (f *fakeImageService) injectError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = append(f.errs[method], err)
}

func (f *fakeImageService) popError(method string) error {
	errs := f.errs[method]
	if len(errs) == 0 {
		return nil
	}
	f.errs[method] = errs[1:]
	return errs[0]
}

func (f *fakeImageService) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, _ bool) (*runtimeapi.ImageStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called = append(f.called, "ImageStatus")
	if err := f.popError("ImageStatus"); err != nil {
		return nil, err
	}
	return &runtimeapi.ImageStatusResponse{Image: f.images[image.GetImage()]}, nil
}

func (f *fakeImageService) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	hook := f.onPull
	f.mu.Unlock()
	var hookErr error
	if hook != nil {
		hookErr = hook(ctx)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.called = append(f.called, "PullImage")
	f.pulls = append(f.pulls, pullCall{image: image.GetImage(), annotations: image.GetAnnotations(), auth: auth})
	if hookErr != nil {
		return "", hookErr
	}
	if err := f.popError("PullImage"); err != nil {
		return "", err
	}
	img, ok := f.images[image.GetImage()]
	if !ok {
		img = f.makeImage(image.GetImage())
		f.images[image.GetImage()] = img
	}
	return img.Id, nil
}

func (f *fakeImageService) pullCalls() []pullCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pullCall(nil), f.pulls...)
}

func (f *fakeImageService) setImage(name string, img *runtimeapi.Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[name] = img
}

func (f *fakeImageService) removeImage(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, name)
}
