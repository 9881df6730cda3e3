package node

import (
	"fmt"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNodeImages(t *testing.T) {
	many := make([]*runtimeapi.Image, 60)
	for i := range many {
		many[i] = &runtimeapi.Image{Id: fmt.Sprintf("sha256:%02d", i), RepoTags: []string{fmt.Sprintf("img:%02d", i)}, Size: uint64(i)}
	}
	for _, tc := range []struct {
		name string
		imgs []*runtimeapi.Image
		max  int
		want []v1.ContainerImage
	}{
		{"none", nil, 50, nil},
		{"largest first, digests then tags", []*runtimeapi.Image{
			{Id: "a", RepoTags: []string{"small:1"}, Size: 10},
			{Id: "b", RepoTags: []string{"big:1", "big:latest"}, RepoDigests: []string{"big@sha256:bb"}, Size: 30},
			{Id: "c", RepoDigests: []string{"mid@sha256:cc"}, Size: 20},
		}, 50, []v1.ContainerImage{
			{Names: []string{"big@sha256:bb", "big:1", "big:latest"}, SizeBytes: 30},
			{Names: []string{"mid@sha256:cc"}, SizeBytes: 20},
			{Names: []string{"small:1"}, SizeBytes: 10},
		}},
		{"equal sizes by ID, descending", []*runtimeapi.Image{
			{Id: "a", RepoTags: []string{"a:1"}, Size: 10},
			{Id: "b", RepoTags: []string{"b:1"}, Size: 10},
		}, 50, []v1.ContainerImage{{Names: []string{"b:1"}, SizeBytes: 10}, {Names: []string{"a:1"}, SizeBytes: 10}}},
		{"unnamed images left out", []*runtimeapi.Image{{Id: "x", Size: 99}, {Id: "a", RepoTags: []string{"a:1"}, Size: 1}},
			50, []v1.ContainerImage{{Names: []string{"a:1"}, SizeBytes: 1}}},
		{"at most five names", []*runtimeapi.Image{{Id: "a", RepoTags: []string{"t1", "t2", "t3", "t4"}, RepoDigests: []string{"d1", "d2"}, Size: 1}},
			50, []v1.ContainerImage{{Names: []string{"d1", "d2", "t1", "t2", "t3"}, SizeBytes: 1}}},
		{"capped", []*runtimeapi.Image{{Id: "a", RepoTags: []string{"a:1"}, Size: 1}, {Id: "b", RepoTags: []string{"b:1"}, Size: 2}},
			1, []v1.ContainerImage{{Names: []string{"b:1"}, SizeBytes: 2}}},
		{"no cap", []*runtimeapi.Image{{Id: "a", RepoTags: []string{"a:1"}, Size: 1}, {Id: "b", RepoTags: []string{"b:1"}, Size: 2}},
			-1, []v1.ContainerImage{{Names: []string{"b:1"}, SizeBytes: 2}, {Names: []string{"a:1"}, SizeBytes: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeImages(tc.imgs, tc.max); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("nodeImages = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("default cap keeps the 50 largest", func(t *testing.T) {
		got := nodeImages(many, DefaultMaxImages)
		if len(got) != 50 || got[0].Names[0] != "img:59" || got[49].Names[0] != "img:10" {
			t.Errorf("nodeImages of 60 = %d images, first %v, last %v", len(got), got[0], got[len(got)-1])
		}
	})
}
