package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownAt is a status manager whose last write gave resourceVersion rv.
type ownAt string

func (rv ownAt) OwnWrite(pod *v1.Pod) bool { return pod.ResourceVersion == string(rv) }

func TestSkipOwnWrites(t *testing.T) {
	pod := func(rv string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1", ResourceVersion: rv}}
	}
	for _, tc := range []struct {
		name string
		pods podMap
		want bool // enqueued
	}{
		{"the status manager's own write", podMap{"u1": pod("7")}, false},
		{"another writer's change", podMap{"u1": pod("8")}, true},
		{"pod gone from the cache", podMap{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []types.UID
			skipOwnWrites(tc.pods, ownAt("7"), func(uid types.UID) { got = append(got, uid) })("u1")
			if enqueued := len(got) == 1 && got[0] == "u1"; enqueued != tc.want || len(got) > 1 {
				t.Errorf("enqueued %v, want enqueued %v", got, tc.want)
			}
		})
	}
}
