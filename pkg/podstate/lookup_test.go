package podstate_test

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestLookupFind(t *testing.T) {
	pod := pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"))
	for _, tc := range []struct {
		name      string
		namespace string
		pod       string
		uid       types.UID
		container string
		wantErr   error // a sentinel, or errAny for any other error
		wantType  criconfig.ContainerType
	}{
		{name: "unknown pod", namespace: "default", pod: "nope", wantErr: podstate.ErrPodNotFound},
		{name: "other namespace", namespace: "kube-system", pod: "app", wantErr: podstate.ErrPodNotFound},
		{name: "same name, other UID: a replaced pod", namespace: "default", pod: "app", uid: "uid-old", container: "app", wantErr: podstate.ErrPodNotFound},
		{name: "no such container", namespace: "default", pod: "app", container: "nope", wantErr: podstate.ErrContainerNotFound},
		{name: "the pod alone", namespace: "default", pod: "app"},
		{name: "the pod by UID", namespace: "default", pod: "app", uid: "uid-1"},
		{name: "a regular container", namespace: "default", pod: "app", container: "app", wantType: pt.Regular},
		{name: "an init container", namespace: "default", pod: "app", container: "setup", wantType: pt.Init},
		{name: "an ephemeral container", namespace: "default", pod: "app", uid: "uid-1", container: "debug", wantType: pt.Ephemeral},
		{name: "the runtime cannot be read", namespace: "default", pod: "app", container: "app", wantErr: errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			rt := criapitesting.NewFakeRuntimeService()
			f := pt.CRI{Runtime: rt, Pod: pod}
			f.Sandbox("sb1", 0, true, pt.T0, "10.88.0.2")
			f.Container("c-app", "sb1", pt.Regular, "app", pt.Running, 0, pt.T0, 0)
			if tc.wantErr == errAny {
				rt.InjectError("ListPodSandbox", errors.New("runtime unavailable"))
			}
			l := podstate.NewLookup(pt.NewPods(pod), podstate.NewObserver(rt))

			found, err := l.Find(ctx, tc.namespace, tc.pod, tc.uid, tc.container)
			switch {
			case tc.wantErr == errAny:
				if err == nil || errors.Is(err, podstate.ErrPodNotFound) || errors.Is(err, podstate.ErrContainerNotFound) {
					t.Fatalf("Find = %v, want a runtime error that is neither not-found", err)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Find = %v, want %v", err, tc.wantErr)
				}
				if found != nil {
					t.Errorf("Find returned %+v with its error", found)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if found.Pod != pod {
				t.Errorf("Find returned pod %v, want the cached one", found.Pod)
			}
			if found.State == nil || len(found.State.Containers) != 1 || found.State.Containers[0].ID != "c-app" {
				t.Errorf("Find state %+v, want the runtime's", found.State)
			}
			if found.Type != tc.wantType {
				t.Errorf("type %q, want %q", found.Type, tc.wantType)
			}
			if tc.container == "" {
				if found.Spec != nil {
					t.Errorf("spec %+v when no container was asked for", found.Spec)
				}
				return
			}
			if found.Spec == nil || found.Spec.Name != tc.container {
				t.Errorf("spec %+v, want %s's", found.Spec, tc.container)
			}
		})
	}
}

// errAny stands in a table for an error that is none of the sentinels.
var errAny = errors.New("any other error")
