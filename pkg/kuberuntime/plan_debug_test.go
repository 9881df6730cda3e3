package kuberuntime

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

func TestPlanDebugControl(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	app := ctr("c1", "sb1", regT, "app", running, 0, 0)
	// The debugger started at t0.
	dbg := func(mod func(*podstate.Container)) podstate.Container {
		c := ctr("e1", "sb1", ephT, "debug", running, 0, 0)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	limits := func(max, idle time.Duration) func(*podstate.Container) {
		return func(c *podstate.Container) { c.MaxDuration, c.IdleTimeout = max, idle }
	}
	stopAsked := func(names string) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Annotations = map[string]string{debugapi.StopAnnotation: names} }
	}
	records := func(s *podstate.PodState, r podstate.Record) *podstate.PodState {
		s.Records = map[string]podstate.Record{"debug": r}
		return s
	}
	sessions := func(s *podstate.PodState, a podstate.SessionActivity) *podstate.PodState {
		s.Sessions = map[string]podstate.SessionActivity{"e1": a}
		return s
	}
	createdDbg := ctr("e1", "sb1", ephT, "debug", created, 0, 0)
	ended := &podstate.Ending{Reason: debugapi.ReasonStopRequested, Message: "m", At: t0}
	pod := testPod(withEphemeral("debug", "app"))
	for _, tc := range []struct {
		name      string
		pod       *v1.Pod
		state     *podstate.PodState
		now       time.Duration // after t0
		wantEnd   []EndAction
		wantStart bool
		requeue   time.Duration
	}{
		{name: "no limits, no request: nothing", pod: pod, state: state(sb1, app, dbg(nil)), now: time.Hour},
		{name: "stop requested while running", pod: testPod(withEphemeral("debug", "app"), stopAsked("other, debug")), state: state(sb1, app, dbg(nil)),
			wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Running: true, Reason: debugapi.ReasonStopRequested}}},
		{name: "stop requested before creation: never created", pod: testPod(withEphemeral("debug", "app"), stopAsked("debug")), state: state(sb1, app),
			wantEnd: []EndAction{{Name: "debug", Reason: debugapi.ReasonStopRequested}}},
		{name: "stop requested while created, never started", pod: testPod(withEphemeral("debug", "app"), stopAsked("debug")), state: state(sb1, app, createdDbg),
			wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Reason: debugapi.ReasonStopRequested}}},
		{name: "stop requested after it exited: nothing", pod: testPod(withEphemeral("debug", "app"), stopAsked("debug")), state: state(sb1, app, ctr("e1", "sb1", ephT, "debug", exited, 0, 0))},
		{name: "stop requested after a denial: nothing more", pod: testPod(withEphemeral("debug", "app"), stopAsked("debug")),
			state: records(state(sb1, app), podstate.Record{Ended: &podstate.Ending{Reason: debugapi.ReasonPolicyDenied}})},
		{name: "denied: never created", pod: pod, state: records(state(sb1, app), podstate.Record{Ended: &podstate.Ending{Reason: debugapi.ReasonPolicyDenied}})},
		{name: "denied, record lost, status says so: never created", pod: testPod(withEphemeral("debug", "app"), func(p *v1.Pod) {
			p.Status.EphemeralContainerStatuses = []v1.ContainerStatus{{Name: "debug", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: debugapi.ReasonPolicyDenied}}}}
		}), state: state(sb1, app)},
		{name: "ended already, still running: stopped again", pod: pod, state: records(state(sb1, app, dbg(nil)), podstate.Record{ContainerID: "e1", Ended: ended}),
			wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Running: true, Reason: debugapi.ReasonStopRequested, Message: "m"}}},
		{name: "ended before its start, start aborted: not replaced", pod: pod, state: func() *podstate.PodState {
			c := ctr("e1", "sb1", ephT, "debug", exited, 0, 128)
			c.StartedAt = time.Time{}
			c.Message = "failed to create containerd task: context canceled"
			return records(state(sb1, app, c), podstate.Record{ContainerID: "e1", Ended: ended})
		}(), wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Reason: debugapi.ReasonStopRequested, Message: "m"}}},
		{name: "maxDuration passed", pod: pod, state: state(sb1, app, dbg(limits(time.Minute, 0))), now: time.Minute,
			wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Running: true, Reason: debugapi.ReasonDeadlineExceeded}}},
		{name: "maxDuration ahead: a sync then", pod: pod, state: state(sb1, app, dbg(limits(time.Minute, 0))), now: 20 * time.Second, requeue: 40 * time.Second},
		{name: "no session tracking: never idle", pod: pod, state: state(sb1, app, dbg(limits(0, time.Minute))), now: time.Hour},
		{name: "idle since its start", pod: pod, state: sessions(state(sb1, app, dbg(limits(0, time.Minute))), podstate.SessionActivity{}), now: 2 * time.Minute,
			wantEnd: []EndAction{{Name: "debug", ContainerID: "e1", Running: true, Reason: debugapi.ReasonSessionIdle}}},
		{name: "a session open: never idle", pod: pod, state: sessions(state(sb1, app, dbg(limits(0, time.Minute))), podstate.SessionActivity{Active: true}), now: time.Hour},
		{name: "last session ended 30s ago: a sync when idle", pod: pod,
			state: sessions(state(sb1, app, dbg(limits(0, time.Minute))), podstate.SessionActivity{Last: t0.Add(90 * time.Second)}), now: 2 * time.Minute, requeue: 30 * time.Second},
		{name: "both limits ahead: the nearer", pod: pod, state: sessions(state(sb1, app, dbg(limits(time.Hour, time.Minute))), podstate.SessionActivity{}), now: 10 * time.Second, requeue: 50 * time.Second},
		{name: "not yet created, no request: started", pod: pod, state: state(sb1, app), wantStart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Plan(tc.pod, tc.state, t0.Add(tc.now))
			var ends []EndAction
			for _, e := range a.EphemeralToEnd {
				if e.Message != "m" {
					e.Message = ""
				}
				ends = append(ends, e)
			}
			if !reflect.DeepEqual(ends, tc.wantEnd) {
				t.Errorf("EphemeralToEnd = %+v, want %+v", ends, tc.wantEnd)
			}
			started := false
			for _, st := range a.ContainersToStart {
				started = started || st.Type == ephT
			}
			if started != tc.wantStart {
				t.Errorf("ephemeral start planned = %v, want %v (%+v)", started, tc.wantStart, a.ContainersToStart)
			}
			if a.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", a.RequeueAfter, tc.requeue)
			}
			if len(a.EphemeralLost) > 0 {
				t.Errorf("EphemeralLost = %v, want none", a.EphemeralLost)
			}
		})
	}
}
