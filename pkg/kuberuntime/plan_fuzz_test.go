package kuberuntime

import (
	"encoding/json"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// FuzzPlan feeds Plan pods decoded from fuzzed JSON (or none, a pod gone
// from the API) and fuzzed observed states: it must not panic, and must
// keep the exactly-once rules of ephemeral containers.
func FuzzPlan(f *testing.F) {
	for _, s := range podstatetest.FuzzSeeds() {
		f.Add(s.Pod, s.State, int64(0), false)
		f.Add(s.Pod, s.State, int64(3600), true)
	}
	f.Fuzz(func(t *testing.T, podJSON, stateBytes []byte, offset int64, gone bool) {
		var pod *v1.Pod
		if !gone {
			pod = &v1.Pod{}
			if err := json.Unmarshal(podJSON, pod); err != nil {
				t.Skip()
			}
		}
		st := podstatetest.FuzzState(pod, stateBytes)
		a := Plan(pod, st, podstatetest.T0.Add(time.Duration(offset)*time.Second))
		if a.RequeueAfter < 0 {
			t.Errorf("RequeueAfter %v < 0", a.RequeueAfter)
		}
		for _, s := range a.ContainersToStart {
			if pod == nil {
				t.Fatalf("start %q of a pod gone from the API", s.Name)
			}
			if s.Type != criconfig.ContainerTypeEphemeral {
				continue
			}
			if s.Index < 0 || s.Index >= len(pod.Spec.EphemeralContainers) || pod.Spec.EphemeralContainers[s.Index].Name != s.Name {
				t.Fatalf("start of ephemeral %q at index %d, not in the spec", s.Name, s.Index)
			}
			cur := st.Latest(criconfig.ContainerTypeEphemeral, s.Name)
			// The agent's ending is final: denied or stopped, never
			// started, created or replaced.
			if podstate.EphemeralNeverRun(pod, st, s.Name) != nil || (cur != nil && st.AgentEnding(cur) != nil) {
				t.Errorf("ephemeral %q started though the agent ended it", s.Name)
			}
			switch {
			case s.CreatedID != "":
				if cur == nil || cur.ID != s.CreatedID || !cur.Created() {
					t.Errorf("ephemeral %q: starts %q, not its created container", s.Name, s.CreatedID)
				}
			case s.Replaces != "":
				if cur == nil || cur.ID != s.Replaces || !st.Replaced(cur) {
					t.Errorf("ephemeral %q: replaces %q, not an aborted start", s.Name, s.Replaces)
				}
			case podstate.EphemeralCreated(pod, st, s.Name):
				t.Errorf("ephemeral %q created again though a witness says it was", s.Name)
			}
		}
	})
}
