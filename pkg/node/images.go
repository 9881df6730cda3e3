package node

import (
	"cmp"
	"slices"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxNamesPerImage is the kubelet's MaxNamesPerImageInNodeStatus: an image
// known under many tags reports only its first names, to keep the Node
// object small.
const maxNamesPerImage = 5

// nodeImages returns status.images for the runtime's images as the kubelet
// computes it: largest first (equal sizes by ID, as the kubelet's
// ByImageSize), at most max of them (a negative max: all), each named by its
// repo digests then its repo tags, at most maxNamesPerImage names. Images
// without any name (dangling layers) are left out: the scheduler's
// ImageLocality scores by name.
func nodeImages(imgs []*runtimeapi.Image, max int) []v1.ContainerImage {
	sorted := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		if len(img.GetRepoDigests())+len(img.GetRepoTags()) > 0 {
			sorted = append(sorted, img)
		}
	}
	slices.SortStableFunc(sorted, func(a, b *runtimeapi.Image) int {
		if c := cmp.Compare(b.GetSize(), a.GetSize()); c != 0 {
			return c
		}
		return cmp.Compare(b.GetId(), a.GetId())
	})
	if max >= 0 && len(sorted) > max {
		sorted = sorted[:max]
	}
	var out []v1.ContainerImage
	for _, img := range sorted {
		names := append(slices.Clone(img.GetRepoDigests()), img.GetRepoTags()...)
		if len(names) > maxNamesPerImage {
			names = names[:maxNamesPerImage]
		}
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: int64(img.GetSize())})
	}
	return out
}
