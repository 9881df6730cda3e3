package podstatetest

import (
	"encoding/json"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// Messages a fuzzed exited container may carry: the runtime's words for a
// start aborted while the task was created (podstate.AbortedStart), one
// aborted later, and none.
var fuzzMessages = []string{
	"",
	"failed to create containerd task: context canceled",
	"failed to start containerd task: context canceled",
	"OOMKilled",
}

// FuzzState decodes data into an observed state of pod for fuzz targets:
// up to 4 sandboxes, then containers of 8 bytes each (type, name among the
// spec's names or one it lacks, state, attempt, exit code, sandbox, start
// and message, records) whose names come from pod so that they meet its
// spec. Every byte string gives a state; it is sorted as an Observer sorts
// it. pod may be nil.
func FuzzState(pod *v1.Pod, data []byte) *podstate.PodState {
	names := map[criconfig.ContainerType][]string{}
	if pod != nil {
		for _, c := range pod.Spec.InitContainers {
			names[Init] = append(names[Init], c.Name)
		}
		for _, c := range pod.Spec.Containers {
			names[Regular] = append(names[Regular], c.Name)
		}
		for _, c := range pod.Spec.EphemeralContainers {
			names[Ephemeral] = append(names[Ephemeral], c.Name)
		}
	}
	s := &podstate.PodState{}
	if len(data) == 0 {
		return s
	}
	nsb := int(data[0] % 5)
	data = data[1:]
	for i := 0; i < nsb && len(data) > 0; i++ {
		b := data[0]
		data = data[1:]
		sb := ReadySandbox(string(rune('a'+i)), uint32(b>>2))
		sb.Ready = b&1 == 1
		if b&2 == 2 {
			sb.IPs = nil
		}
		s.Sandboxes = append(s.Sandboxes, sb)
	}
	types := []criconfig.ContainerType{Init, Regular, Ephemeral}
	states := []runtimeapi.ContainerState{Created, Running, Exited, Unknown}
	for i := 0; len(data) >= 8; i++ {
		b := data[:8]
		data = data[8:]
		typ := types[int(b[0])%len(types)]
		name := "gone"
		if n := names[typ]; int(b[1]) < len(n) {
			name = n[b[1]]
		}
		sandbox := "gone"
		if int(b[5]) < len(s.Sandboxes) {
			sandbox = s.Sandboxes[b[5]].ID
		}
		c := Ctr("c"+strconv.Itoa(i), sandbox, typ, name, states[int(b[2])%len(states)], int(b[3]), int32(int8(b[4])))
		if b[6]&1 == 1 {
			c.StartedAt = time.Time{}
		}
		c.Message = fuzzMessages[int(b[6]>>1)%len(fuzzMessages)]
		if b[7]&1 == 1 {
			if s.Records == nil {
				s.Records = map[string]podstate.Record{}
			}
			r := podstate.Record{Replacements: int(b[7]>>1) % (podstate.MaxReplacements + 2), Unreadable: b[7]&0x80 != 0}
			if b[7]&2 == 2 {
				r.ContainerID = c.ID
			}
			// Some ended by the agent: denied or stopped, before or
			// after running.
			if b[6]&0x40 != 0 {
				reason := debugapi.ReasonPolicyDenied
				if b[6]&0x80 != 0 {
					reason = debugapi.ReasonStopRequested
				}
				r.Ended = &podstate.Ending{Reason: reason, Message: "ended", At: T0}
			}
			s.Records[name] = r
		}
		if b[7]&4 == 4 {
			if s.Probes == nil {
				s.Probes = map[string]podstate.Probed{}
			}
			p := podstate.Probed{Started: b[7]&8 == 8, Ready: b[7]&16 == 16}
			if b[7]&32 == 32 {
				p.Failed = podstate.Liveness
			}
			s.Probes[c.ID] = p
		}
		s.Containers = append(s.Containers, c)
	}
	s.Sort()
	return s
}

// FuzzSeed is one seed of the plan and status fuzz targets: a pod as JSON
// and the bytes FuzzState decodes into its observed state.
type FuzzSeed struct {
	Pod   []byte
	State []byte
}

// FuzzSeeds returns seeds built from the fixtures the table tests use:
// init containers, a sidecar, ephemeral containers (one the status already
// reports), restart policies, an active deadline and a deletion.
func FuzzSeeds() []FuzzSeed {
	deadline := int64(30)
	deleted := metav1.NewTime(T0)
	pods := []*v1.Pod{
		Pod(),
		Pod(WithInit("i1", "i2"), WithSidecar("proxy"), WithEphemeral("app", "debug", "debug2")),
		Pod(WithPolicy(v1.RestartPolicyNever), WithEphemeral("", "debug")),
		Pod(WithPolicy(v1.RestartPolicyOnFailure), WithInit("i1"), func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = &deadline }),
		Pod(WithEphemeral("app", "debug"), func(p *v1.Pod) {
			p.DeletionTimestamp = &deleted
			p.Status.EphemeralContainerStatuses = []v1.ContainerStatus{{Name: "debug", ContainerID: "containerd://gone", RestartCount: 2,
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}}}
		}),
	}
	states := [][]byte{
		nil,
		{1, 5, 0, 1, 1, 0, 0, 0, 0, 0, 0},
		{2, 9, 4, 2, 0, 0, 0, 0, 0, 0, 3, 1, 0, 1, 2, 1, 0, 0, 2, 2, 0, 2, 0, 0, 0, 2, 3},
	}
	var out []FuzzSeed
	for _, p := range pods {
		b, err := json.Marshal(p)
		if err != nil {
			panic(err) // fixtures always marshal
		}
		for _, s := range states {
			out = append(out, FuzzSeed{Pod: b, State: s})
		}
	}
	return out
}
