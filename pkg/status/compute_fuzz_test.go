package status

import (
	"encoding/json"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// FuzzCompute feeds Compute pods decoded from fuzzed JSON, their status in
// the API included, and fuzzed observed states: it must not panic, must
// give one status per container of the spec, and never a restart count to
// an ephemeral container, which is never restarted.
func FuzzCompute(f *testing.F) {
	for _, s := range podstatetest.FuzzSeeds() {
		f.Add(s.Pod, s.State, int64(0), "")
		f.Add(s.Pod, s.State, int64(3600), "BackOff")
	}
	f.Fuzz(func(t *testing.T, podJSON, stateBytes []byte, offset int64, reason string) {
		pod := &v1.Pod{}
		if err := json.Unmarshal(podJSON, pod); err != nil {
			t.Skip()
		}
		st := podstatetest.FuzzState(pod, stateBytes)
		var waiting map[podstate.ContainerKey]podstate.Waiting
		if reason != "" {
			waiting = map[podstate.ContainerKey]podstate.Waiting{}
			for _, c := range st.Containers {
				waiting[podstate.ContainerKey{Type: c.Type, Name: c.Name}] = podstate.Waiting{Reason: reason, Message: "fuzzed"}
			}
		}
		node := NodeInfo{HostIPs: []string{"192.168.1.10"}, RuntimeName: "containerd"}
		s := Compute(pod, st, waiting, node, podstatetest.T0.Add(time.Duration(offset)*time.Second))
		if got, want := len(s.InitContainerStatuses), len(pod.Spec.InitContainers); got != want {
			t.Errorf("%d init container statuses, want %d", got, want)
		}
		if got, want := len(s.ContainerStatuses), len(pod.Spec.Containers); got != want {
			t.Errorf("%d container statuses, want %d", got, want)
		}
		if got, want := len(s.EphemeralContainerStatuses), len(pod.Spec.EphemeralContainers); got != want {
			t.Errorf("%d ephemeral container statuses, want %d", got, want)
		}
		for _, cs := range s.EphemeralContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("ephemeral %q: restartCount %d", cs.Name, cs.RestartCount)
			}
		}
	})
}
