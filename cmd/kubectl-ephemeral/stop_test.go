package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

func TestStopAnnotation(t *testing.T) {
	pod := func() *v1.Pod {
		return debugPod("ns", "web", "n1",
			[]v1.EphemeralContainer{ec("a", "busybox", ""), ec("b", "busybox", ""), ec("done", "busybox", "")},
			running("a", time.Minute), terminated("done", "Completed", time.Minute))
	}
	for _, tc := range []struct {
		name           string
		pod            *v1.Pod
		names          []string
		want           string
		wantTerminated []string
		wantErr        string
	}{
		{name: "first", pod: pod(), names: []string{"a"}, want: "a"},
		{name: "added to the others", pod: withStop(pod(), "b"), names: []string{"a"}, want: "b,a"},
		{name: "several, one with no status yet", pod: pod(), names: []string{"a", "b"}, want: "a,b"},
		{name: "already there", pod: withStop(pod(), "a, b"), names: []string{"a"}, want: "a, b"},
		{name: "terminated left out", pod: pod(), names: []string{"done", "a"}, want: "a", wantTerminated: []string{"done"}},
		{name: "an app container", pod: pod(), names: []string{"a", "app"}, wantErr: `pod ns/web has no debug container app (its debug containers: a, b, done)`},
		{name: "no debug containers", pod: debugPod("ns", "web", "n1", nil), names: []string{"x"}, wantErr: `pod ns/web has no debug container x (it has none)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, terminated, err := stopAnnotation(tc.pod, tc.names)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !reflect.DeepEqual(terminated, tc.wantTerminated) {
				t.Errorf("got %q, terminated %v; want %q, %v", got, terminated, tc.want, tc.wantTerminated)
			}
		})
	}
}

// patches records the pods patches the client sent.
func patches(c *fake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out = append(out, string(p.GetPatch()))
		}
	}
	return out
}

func TestRequestStop(t *testing.T) {
	ctx := context.Background()
	t.Run("patches with the resourceVersion read", func(t *testing.T) {
		c := fake.NewClientset(withStop(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", ""), ec("b", "busybox", "")}), "b"))
		res, err := requestStop(ctx, c, "ns", "web", []string{"a"})
		if err != nil || !res.patched {
			t.Fatalf("requestStop = %+v, %v", res, err)
		}
		var patch struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		ps := patches(c)
		if len(ps) != 1 || json.Unmarshal([]byte(ps[0]), &patch) != nil || patch.Metadata.ResourceVersion != "1" {
			t.Fatalf("patches %q, want one with resourceVersion 1", ps)
		}
		p, err := c.CoreV1().Pods("ns").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Annotations[debugapi.StopAnnotation]; got != "b,a" {
			t.Errorf("annotation %q, want b,a", got)
		}
	})
	t.Run("conflict reads again", func(t *testing.T) {
		c := fake.NewClientset(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", ""), ec("b", "busybox", "")}))
		conflicts := 0
		c.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			if conflicts > 0 {
				return false, nil, nil
			}
			conflicts++
			// Someone else asked for b meanwhile.
			p, _ := c.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "ns", "web")
			p.(*v1.Pod).Annotations = map[string]string{debugapi.StopAnnotation: "b"}
			if err := c.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, p, "ns"); err != nil {
				t.Fatal(err)
			}
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web", nil)
		})
		if _, err := requestStop(ctx, c, "ns", "web", []string{"a"}); err != nil {
			t.Fatal(err)
		}
		p, _ := c.CoreV1().Pods("ns").Get(ctx, "web", metav1.GetOptions{})
		if got := p.Annotations[debugapi.StopAnnotation]; got != "b,a" {
			t.Errorf("annotation %q, want b,a: the other request kept", got)
		}
	})
	t.Run("nothing to change, no patch", func(t *testing.T) {
		c := fake.NewClientset(withStop(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", "")}), "a"))
		res, err := requestStop(ctx, c, "ns", "web", []string{"a"})
		if err != nil || res.patched || len(patches(c)) != 0 {
			t.Errorf("requestStop = %+v, %v; patches %q", res, err, patches(c))
		}
	})
	t.Run("errors", func(t *testing.T) {
		c := fake.NewClientset(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", "")}))
		for names, want := range map[string]string{
			"web/x":  "has no debug container x",
			"gone/a": `pods "gone" not found`,
		} {
			pod, name, _ := strings.Cut(names, "/")
			if _, err := requestStop(ctx, c, "ns", pod, []string{name}); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", names, err, want)
			}
		}
		if len(patches(c)) != 0 {
			t.Errorf("patched: %q", patches(c))
		}
	})
}

func TestWaitTerminated(t *testing.T) {
	ctx := context.Background()
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	c := fake.NewClientset(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", ""), ec("b", "busybox", "")},
		running("a", time.Minute), running("b", time.Minute)))
	gets := 0
	// The agent stops a at once and b after the second read.
	c.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		o, err := c.Tracker().Get(pods, "ns", "web")
		if err != nil {
			t.Fatal(err)
		}
		p := o.(*v1.Pod)
		p.Status.EphemeralContainerStatuses[0] = terminated("a", debugapi.ReasonStopRequested, time.Minute)
		if gets >= 2 {
			p.Status.EphemeralContainerStatuses[1] = terminated("b", debugapi.ReasonStopRequested, time.Minute)
		}
		if err := c.Tracker().Update(pods, p, "ns"); err != nil {
			t.Fatal(err)
		}
		return false, nil, nil
	})
	var seen []string
	err := waitTerminated(ctx, c, "ns", "web", []string{"a", "b"}, time.Minute, func(name string, s *v1.ContainerStateTerminated) {
		seen = append(seen, name+" "+s.Reason)
	})
	if want := []string{"a DebugStopRequested", "b DebugStopRequested"}; err != nil || !reflect.DeepEqual(seen, want) {
		t.Errorf("waitTerminated = %v, seen %q, want %q", err, seen, want)
	}

	c = fake.NewClientset(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", "")}, running("a", time.Minute)))
	err = waitTerminated(ctx, c, "ns", "web", []string{"a"}, time.Millisecond, func(string, *v1.ContainerStateTerminated) {})
	if err == nil || !strings.Contains(err.Error(), "still not terminated after 1ms: a") {
		t.Errorf("timeout: %v", err)
	}
}
