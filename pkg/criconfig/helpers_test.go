package criconfig

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// testPod returns a pod as the API server would hand it over: defaulted
// security context, DNS policy and QoS class.
func testPod(mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "app", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"note": "x"},
		},
		Spec: v1.PodSpec{
			NodeName:        "node-1",
			DNSPolicy:       v1.DNSClusterFirst,
			SecurityContext: &v1.PodSecurityContext{},
			Containers: []v1.Container{{
				Name:                     "main",
				Image:                    "busybox",
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: v1.TerminationMessageReadFile,
			}},
		},
		Status: v1.PodStatus{QOSClass: v1.PodQOSBestEffort},
	}
	for _, m := range mutate {
		if m != nil {
			m(p)
		}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func q(s string) resource.Quantity { return resource.MustParse(s) }

// fakeSources serves ConfigMaps and Secrets from maps, failing missing ones
// the way the kubelet's managers do, and counts fetches.
type fakeSources struct {
	configMaps map[string]map[string]string
	secrets    map[string]map[string][]byte
	err        error
	fetches    int
}

func (f *fakeSources) ConfigMap(_ context.Context, namespace, name string) (*v1.ConfigMap, error) {
	d, err := fetch(f, f.configMaps, "configmap", name)
	if err != nil {
		return nil, err
	}
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: d}, nil
}

func (f *fakeSources) Secret(_ context.Context, namespace, name string) (*v1.Secret, error) {
	d, err := fetch(f, f.secrets, "secret", name)
	if err != nil {
		return nil, err
	}
	return &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: d}, nil
}

// fetch counts a fetch and returns f.err, else the data of objs[name], else
// the kubelet's NotFound error for resource.
func fetch[D any](f *fakeSources, objs map[string]D, resource, name string) (D, error) {
	f.fetches++
	var none D
	if f.err != nil {
		return none, f.err
	}
	d, ok := objs[name]
	if !ok {
		return none, apierrors.NewNotFound(v1.Resource(resource), name)
	}
	return d, nil
}

// fakeRecorder keeps the Events it is given as "reason: message".
type fakeRecorder struct{ events []string }

func (r *fakeRecorder) Eventf(_ runtime.Object, _, reason, messageFmt string, args ...interface{}) {
	r.events = append(r.events, reason+": "+fmt.Sprintf(messageFmt, args...))
}

func assertProtoEqual(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, prototext.Format(got), prototext.Format(want))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }
