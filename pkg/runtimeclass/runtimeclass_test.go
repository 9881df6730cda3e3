package runtimeclass

import (
	"testing"

	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	listers "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
)

func TestLookupRuntimeHandler(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := idx.Add(&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(listers.NewRuntimeClassLister(idx))
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		class   *string
		want    string
		wantErr string
	}{
		{"no class: the default handler", nil, "", ""},
		{"empty class: the default handler", str(""), "", ""},
		{"a class: its handler", str("gvisor"), "runsc", ""},
		{"a missing class: the kubelet's error", str("kata"), "", `runtimeclass.node.k8s.io "kata" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.LookupRuntimeHandler(tc.class)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("LookupRuntimeHandler = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}
