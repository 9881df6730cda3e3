package kuberuntime

import (
	"context"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestTerminationPrereqs(t *testing.T) {
	sidecars := testPod(podstatetest.WithSidecar("s1"), withInit("i1"), podstatetest.WithSidecar("s2"), podstatetest.WithSidecar("s3"),
		podstatetest.WithEphemeral("app", "debugger"))
	all := map[string]bool{"s1": true, "s2": true, "s3": true, "app": true, "debugger": true}
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		running map[string]bool
		want    map[string][]string
	}{
		{"no sidecars: nobody waits", testPod(withInit("i1")), map[string]bool{"app": true}, map[string][]string{}},
		{"sidecars after the main containers, in reverse order; ephemeral containers with the main ones", sidecars, all,
			map[string][]string{"s3": {"app"}, "s2": {"app", "s3"}, "s1": {"app", "s2"}}},
		{"a stopped container is not waited for", sidecars, map[string]bool{"s1": true, "s3": true},
			map[string][]string{"s1": {"s3"}}},
		{"the last sidecar alone waits for nothing", sidecars, map[string]bool{"s2": true}, map[string][]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := terminationPrereqs(tc.pod, tc.running); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("terminationPrereqs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTerminationOrderWaits(t *testing.T) {
	pod := testPod(podstatetest.WithSidecar("s1"))
	o := newTerminationOrder(clock.RealClock{}, pod, []string{"app", "s1"})
	if w := o.wait(context.Background(), "app", time.Minute); w != 0 {
		t.Fatalf("a main container waited %s", w)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		o.done("app")
		o.done("app") // twice is harmless
	}()
	if w := o.wait(context.Background(), "s1", time.Minute); w < 40*time.Millisecond || w > 10*time.Second {
		t.Errorf("the sidecar waited %s, want about 50ms", w)
	}
	o2 := newTerminationOrder(clock.RealClock{}, pod, []string{"app", "s1"})
	if w := o2.wait(context.Background(), "s1", time.Second); w < time.Second {
		t.Errorf("the sidecar waited %s past a grace period of 1s", w)
	}
}
