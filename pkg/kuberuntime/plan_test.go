package kuberuntime

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// Fixtures shared with the status tests.
var (
	t0           = podstatetest.T0
	testPod      = podstatetest.Pod
	withInit     = podstatetest.WithInit
	withPolicy   = podstatetest.WithPolicy
	readySandbox = podstatetest.ReadySandbox
	deadSandbox  = podstatetest.DeadSandbox
	ctr          = podstatetest.Ctr
	state        = podstatetest.State
)

const (
	initT   = podstatetest.Init
	regT    = podstatetest.Regular
	ephT    = podstatetest.Ephemeral
	running = podstatetest.Running
	exited  = podstatetest.Exited
	created = podstatetest.Created
)

// withEphemeral adds one ephemeral container aimed at target.
func withEphemeral(name, target string) func(*v1.Pod) {
	return podstatetest.WithEphemeral(target, name)
}

func start(typ criconfig.ContainerType, i int, name string, restarts int) StartAction {
	return StartAction{Type: typ, Index: i, Name: name, RestartCount: restarts}
}

func TestPlan(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	deleting := func(p *v1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		now   time.Time
		want  Actions
	}{
		{
			name:  "new pod: sandbox and every regular container",
			pod:   testPod(),
			state: state(nil),
			want:  Actions{CreateSandbox: true, ContainersToStart: []StartAction{start(regT, 0, "app", 0)}},
		},
		{
			name:  "new pod with init containers: only the first init container",
			pod:   testPod(withInit("i1", "i2")),
			state: state(nil),
			want:  Actions{CreateSandbox: true, ContainersToStart: []StartAction{start(initT, 0, "i1", 0)}},
		},
		{
			name:  "first init done: the second starts",
			pod:   testPod(withInit("i1", "i2")),
			state: state(sb1, ctr("c1", "sb1", initT, "i1", exited, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 1, "i2", 0)}},
		},
		{
			name:  "init running: regular containers wait",
			pod:   testPod(withInit("i1")),
			state: state(sb1, ctr("c1", "sb1", initT, "i1", running, 0, 0)),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "init failed under Always: restarted at once the first time",
			pod:   testPod(withInit("i1")),
			state: state(sb1, ctr("c1", "sb1", initT, "i1", exited, 0, 1)),
			now:   t0.Add(time.Minute),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "i1", 1)}},
		},
		{
			name:  "init failed under Never: nothing more starts, pod finished",
			pod:   testPod(withInit("i1"), withPolicy(v1.RestartPolicyNever)),
			state: state(sb1, ctr("c1", "sb1", initT, "i1", exited, 0, 1)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "all running: nothing to do",
			pod:   testPod(),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "created but never started: started, not created again",
			pod:   testPod(),
			state: state(sb1, ctr("c1", "sb1", regT, "app", created, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{{Type: regT, Name: "app", CreatedID: "c1"}}},
		},
		{
			name:  "exited under Always, second crash: back off 10s",
			pod:   testPod(),
			state: state(sb1, ctr("c2", "sb1", regT, "app", exited, 1, 1)),
			now:   t0.Add(3 * time.Second),
			want: Actions{SandboxID: "sb1", RequeueAfter: 9 * time.Second, BackOff: []BackOffAction{{Type: regT, Name: "app",
				Until: t0.Add(12 * time.Second), Message: "back-off 10s restarting failed container=app pod=app_default(uid-1)"}}},
		},
		{
			name:  "exited under Always, backoff over: restarted with the next count",
			pod:   testPod(),
			state: state(sb1, ctr("c2", "sb1", regT, "app", exited, 1, 1)),
			now:   t0.Add(time.Minute),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 2)}},
		},
		{
			name:  "exited 0 under OnFailure: done",
			pod:   testPod(withPolicy(v1.RestartPolicyOnFailure)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "exited 1 under OnFailure: restarted",
			pod:   testPod(withPolicy(v1.RestartPolicyOnFailure)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 1)),
			now:   t0.Add(time.Minute),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "dead sandbox under Always: killed and re-created, counts go on",
			pod:   testPod(),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{CreateSandbox: true, SandboxAttempt: 1, ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "dead sandbox under Never after containers ran: left as it is",
			pod:   testPod(withPolicy(v1.RestartPolicyNever)),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			want:  Actions{},
		},
		{
			name:  "deleting: kill everything",
			pod:   testPod(deleting),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "gone from the API with nothing running: nothing to kill",
			pod:   nil,
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{},
		},
		{
			name:  "old instances beyond the two newest are removed",
			pod:   testPod(),
			state: state(sb1, ctr("c3", "sb1", regT, "app", running, 2, 0), ctr("c2", "sb1", regT, "app", exited, 1, 1), ctr("c1", "sb1", regT, "app", exited, 0, 1)),
			want:  Actions{SandboxID: "sb1", ContainersToRemove: []string{"c1"}},
		},
		// Ephemeral containers.
		{
			name:  "ephemeral: no CRI container, started",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(ephT, 0, "debug", 0)}},
		},
		{
			name:  "ephemeral: created but not started, started as it is",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0), ctr("e1", "sb1", ephT, "debug", created, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{{Type: ephT, Name: "debug", CreatedID: "e1"}}},
		},
		{
			name:  "ephemeral: running, nothing",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0), ctr("e1", "sb1", ephT, "debug", running, 0, 0)),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "ephemeral: exited with failure, never restarted",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0), ctr("e1", "sb1", ephT, "debug", exited, 0, 3)),
			now:   t0.Add(time.Hour),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "ephemeral: exists in an older sandbox only, not started again",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state([]podstate.Sandbox{readySandbox("sb2", 1), deadSandbox("sb1", 0)}, ctr("c2", "sb2", regT, "app", running, 1, 0), ctr("e1", "sb1", ephT, "debug", exited, 0, 0)),
			want:  Actions{SandboxID: "sb2"},
		},
		{
			name:  "ephemeral: sandbox being re-created, waits for the next sync",
			pod:   testPod(withEphemeral("debug", "app")),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{CreateSandbox: true, SandboxAttempt: 1, ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "ephemeral: starts while init containers still run",
			pod:   testPod(withInit("i1"), withEphemeral("debug", "")),
			state: state(sb1, ctr("c1", "sb1", initT, "i1", running, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(ephT, 0, "debug", 0)}},
		},
		{
			name:  "ephemeral: two entries, only the missing one starts",
			pod:   testPod(withEphemeral("debug1", "app"), withEphemeral("debug2", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0), ctr("e1", "sb1", ephT, "debug1", exited, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(ephT, 1, "debug2", 0)}},
		},
		{
			name:  "ephemeral: pod deleting, nothing starts",
			pod:   testPod(withEphemeral("debug", "app"), deleting),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "regular container in an unknown state: killed, its policy decides after",
			pod:   testPod(),
			state: state(sb1, ctr("c1", "sb1", regT, "app", podstatetest.Unknown, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT, Message: "Container app is in an unknown state, it will be killed"}}},
		},
		{
			name:  "init container in an unknown state: killed, nothing after it",
			pod:   testPod(withInit("i1")),
			state: state(sb1, ctr("i1", "sb1", initT, "i1", podstatetest.Unknown, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "i1", Name: "i1", Type: initT, Message: "Container i1 is in an unknown state, it will be killed"}}},
		},
		// Sidecars (restartable init containers).
		{
			name:  "sidecar not created yet: started, nothing after it",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withInit("i1")),
			state: state(sb1),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "proxy", 0)}},
		},
		{
			name:  "sidecar running: the next init container starts",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withInit("i1")),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", running, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 1, "i1", 0)}},
		},
		{
			name:  "sidecar running: the regular containers start",
			pod:   testPod(podstatetest.WithSidecar("proxy")),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", running, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 0)}},
		},
		{
			name:  "sidecar running, init after it done: the regular containers start",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withInit("i1")),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", running, 0, 0), ctr("c1", "sb1", initT, "i1", exited, 1, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 0)}},
		},
		{
			// As the kubelet's computeInitContainerActions: a sidecar that
			// exited before anything after it ran must start again first.
			name:  "sidecar started then failed the first time: restarted at once, regular containers wait for it",
			pod:   testPod(podstatetest.WithSidecar("proxy")),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", exited, 0, 1)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "proxy", 1)}},
		},
		{
			name:  "sidecar exited 0: restarted all the same, whatever the pod's policy",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withPolicy(v1.RestartPolicyOnFailure)),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", exited, 0, 0), ctr("c1", "sb1", regT, "app", running, 1, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "proxy", 1)}},
		},
		{
			name:  "sidecar crashed again before the next init container ran: backs off, the next one waits",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withInit("i1")),
			state: state(sb1, ctr("s2", "sb1", initT, "proxy", exited, 1, 1)),
			now:   t0.Add(3 * time.Second),
			want: Actions{SandboxID: "sb1", RequeueAfter: 9 * time.Second,
				BackOff: []BackOffAction{{Type: initT, Name: "proxy", Until: t0.Add(12 * time.Second), Message: "back-off 10s restarting failed container=proxy pod=app_default(uid-1)"}}},
		},
		{
			name:  "sidecar crashed again after the regular containers ran: backs off, they go on",
			pod:   testPod(podstatetest.WithSidecar("proxy")),
			state: state(sb1, ctr("s2", "sb1", initT, "proxy", exited, 1, 1), ctr("c1", "sb1", regT, "app", exited, 0, 1)),
			now:   t0.Add(3 * time.Second),
			want: Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 1)}, RequeueAfter: 9 * time.Second,
				BackOff: []BackOffAction{{Type: initT, Name: "proxy", Until: t0.Add(12 * time.Second), Message: "back-off 10s restarting failed container=proxy pod=app_default(uid-1)"}}},
		},
		{
			name:  "sidecar created but never started: started as it is, blocks what follows",
			pod:   testPod(podstatetest.WithSidecar("proxy"), withInit("i1")),
			state: state(sb1, ctr("s1", "sb1", initT, "proxy", created, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{{Type: initT, Name: "proxy", CreatedID: "s1"}}},
		},
		{
			name:  "sidecar started only in an older sandbox: started again in the new one, blocks what follows",
			pod:   testPod(podstatetest.WithSidecar("proxy")),
			state: state([]podstate.Sandbox{readySandbox("sb2", 1), deadSandbox("sb1", 0)}, ctr("s1", "sb1", initT, "proxy", exited, 0, 0)),
			want:  Actions{SandboxID: "sb2", ContainersToStart: []StartAction{start(initT, 0, "proxy", 1)}},
		},
		{
			name:  "liveness failed: killed with the kubelet's message, the pod's grace",
			pod:   testPod(withLiveness(nil)),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Started: true, Failed: podstate.Liveness}),
			want: Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT,
				Message: "Container app failed liveness probe, will be restarted"}}},
		},
		{
			name:  "liveness failed with the probe's own grace period",
			pod:   testPod(withLiveness(ptr.To[int64](3))),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Started: true, Failed: podstate.Liveness}),
			want: Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT,
				Message: "Container app failed liveness probe, will be restarted", GracePeriod: ptr.To[int64](3)}}},
		},
		{
			name: "startup failed: killed with the startup probe's grace",
			pod: testPod(func(p *v1.Pod) {
				p.Spec.Containers[0].StartupProbe = &v1.Probe{TerminationGracePeriodSeconds: ptr.To[int64](5)}
			}),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Failed: podstate.Startup}),
			want: Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT,
				Message: "Container app failed startup probe, will be restarted", GracePeriod: ptr.To[int64](5)}}},
		},
		{
			name:  "not ready is no reason to kill",
			pod:   testPod(withLiveness(nil)),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Started: true}),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "killed after liveness failure: restarted at once the first time",
			pod:   testPod(withLiveness(nil)),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 137)), "c1", podstate.Probed{Failed: podstate.Liveness}),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "active deadline ahead: a sync at the deadline",
			pod:   testPod(withDeadline(60)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)),
			now:   t0.Add(10 * time.Second),
			want:  Actions{SandboxID: "sb1", RequeueAfter: 50 * time.Second},
		},
		{
			name:  "active deadline ahead of a backoff: the earlier one",
			pod:   testPod(withDeadline(5)),
			state: state(sb1, ctr("c2", "sb1", regT, "app", exited, 1, 1)),
			now:   t0.Add(time.Second),
			want: Actions{SandboxID: "sb1", RequeueAfter: 4 * time.Second, BackOff: []BackOffAction{{Type: regT, Name: "app",
				Message: "back-off 10s restarting failed container=app pod=app_default(uid-1)", Until: podstatetest.T0.Add(12 * time.Second)}}},
		},
		{
			name: "past the active deadline: the whole pod is killed, debuggers too",
			pod:  testPod(withDeadline(60), withEphemeral("debugger", "app")),
			state: state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0),
				ctr("e1", "sb1", ephT, "debugger", running, 0, 0)),
			now:  t0.Add(time.Minute),
			want: Actions{KillPod: true, DeadlineExceeded: true},
		},
		{
			name:  "past the active deadline, nothing running: nothing to kill",
			pod:   testPod(withDeadline(60)),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 137)),
			now:   t0.Add(2 * time.Minute),
			want:  Actions{},
		},
		{
			name:  "no start time yet: no deadline",
			pod:   testPod(withDeadline(60), func(p *v1.Pod) { p.Status.StartTime = nil }),
			state: state(nil),
			want:  Actions{CreateSandbox: true, ContainersToStart: []StartAction{start(regT, 0, "app", 0)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0.Add(time.Hour)
			}
			got := Plan(tc.pod, tc.state, now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan() =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// withLiveness gives the container a liveness probe with that grace.
func withLiveness(grace *int64) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].LivenessProbe = &v1.Probe{TerminationGracePeriodSeconds: grace}
	}
}

// probed sets what the probes say of container id.
func probed(s *podstate.PodState, id string, p podstate.Probed) *podstate.PodState {
	s.Probes = map[string]podstate.Probed{id: p}
	return s
}

func TestRestartDelay(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		ran     time.Duration
		want    time.Duration
	}{
		{0, time.Second, 0},
		{1, time.Second, 10 * time.Second},
		{2, time.Second, 20 * time.Second},
		{5, time.Second, 160 * time.Second},
		{6, time.Second, 5 * time.Minute},
		{20, time.Second, 5 * time.Minute},
		{6, 11 * time.Minute, 0},
	} {
		c := &podstate.Container{Attempt: tc.attempt, StartedAt: t0, FinishedAt: t0.Add(tc.ran)}
		if got := restartDelay(c); got != tc.want {
			t.Errorf("restartDelay(attempt %d, ran %s) = %s, want %s", tc.attempt, tc.ran, got, tc.want)
		}
	}
}

func TestTargetContainerID(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	appRunning := ctr("c1", "sb1", regT, "app", running, 0, 0)
	appExited := ctr("c2", "sb1", regT, "app", exited, 1, 1)
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		state   *podstate.PodState
		want    string
		wantErr string
	}{
		{"target running", testPod(withEphemeral("debug", "app")), state(sb1, appRunning), "c1", ""},
		{"target restarted: the newest instance", testPod(withEphemeral("debug", "app")), state(sb1, appRunning, appExited), "c2", ""},
		{"target has no container yet", testPod(withEphemeral("debug", "app")), state(sb1), "", "unable to find target container app"},
		{"target is an init container", testPod(withInit("setup"), withEphemeral("debug", "setup")), state(sb1, ctr("i1", "sb1", initT, "setup", running, 0, 0)), "i1", ""},
		{"no target", testPod(withEphemeral("debug", "")), state(sb1, appRunning), "", ""},
		{"shareProcessNamespace: the pod's namespace, no target", testPod(withEphemeral("debug", "app"), func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptrTrue() }), state(sb1), "", ""},
		{"hostPID: the node's namespace, no target", testPod(withEphemeral("debug", "app"), func(p *v1.Pod) { p.Spec.HostPID = true }), state(sb1), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := targetContainerID(tc.pod, tc.state, 0)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("targetContainerID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func ptrTrue() *bool { b := true; return &b }

// TestPlanEphemeralWhateverThePod crosses every state of the pod's own
// containers with an ephemeral container not started yet: it is always
// planned, and first, so that an init container that fails to start
// cannot hold it back.
func TestPlanEphemeralWhateverThePod(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	later := t0.Add(5 * time.Second)
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
	}{
		{"init not created yet", testPod(withInit("i1")), state(sb1)},
		{"init created, never started", testPod(withInit("i1")), state(sb1, ctr("i1", "sb1", initT, "i1", created, 0, 0))},
		{"init running", testPod(withInit("i1")), state(sb1, ctr("i1", "sb1", initT, "i1", running, 0, 0))},
		{"init failing, in backoff", testPod(withInit("i1")), state(sb1, ctr("i2", "sb1", initT, "i1", exited, 3, 1))},
		{"sidecar never started", testPod(podstatetest.WithSidecar("s1")), state(sb1, ctr("s1", "sb1", initT, "s1", created, 0, 0))},
		{"app not created yet", testPod(), state(sb1)},
		{"app running", testPod(), state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0))},
		{"app crash-looping, in backoff", testPod(), state(sb1, ctr("c3", "sb1", regT, "app", exited, 3, 1))},
		{"app failed under OnFailure, restarting", testPod(withPolicy(v1.RestartPolicyOnFailure)), state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withEphemeral("debug", "")(tc.pod)
			a := Plan(tc.pod, tc.state, later)
			if len(a.ContainersToStart) == 0 || a.ContainersToStart[0] != start(ephT, 0, "debug", 0) {
				t.Errorf("ContainersToStart = %+v, want the debugger first", a.ContainersToStart)
			}
		})
	}
	// A pod that has finished (here: its init container failed under
	// Never) runs nothing again, debuggers included, as with the kubelet.
	finished := testPod(withInit("i1"), withPolicy(v1.RestartPolicyNever), withEphemeral("debug", ""))
	if a := Plan(finished, state(sb1, ctr("i1", "sb1", initT, "i1", exited, 0, 1)), later); len(a.ContainersToStart) != 0 {
		t.Errorf("finished pod: ContainersToStart = %+v, want none", a.ContainersToStart)
	}
}

// TestPlanEphemeralExactlyOnce is the witness table: any witness that the
// container was created forbids creating it again; a start the agent's own
// death aborted is replaced, a bounded number of times.
func TestPlanEphemeralExactlyOnce(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	app := ctr("c1", "sb1", regT, "app", running, 0, 0)
	aborted := ctr("e1", "sb1", ephT, "debug", exited, 0, 128)
	aborted.StartedAt = time.Time{}
	aborted.Message = "failed to create containerd task: failed to create shim task: context canceled: unknown"
	refused := aborted
	refused.Message = `failed to create containerd task: exec: "sh": executable file not found in $PATH: unknown`
	withRecord := func(s *podstate.PodState, r podstate.Record) *podstate.PodState {
		s.Records = map[string]podstate.Record{"debug": r}
		return s
	}
	reported := func(cs v1.ContainerStatus) func(*v1.Pod) {
		return func(p *v1.Pod) {
			cs.Name = "debug"
			p.Status.EphemeralContainerStatuses = append(p.Status.EphemeralContainerStatuses, cs)
		}
	}
	create := []StartAction{start(ephT, 0, "debug", 0)}
	for _, tc := range []struct {
		name      string
		pod       *v1.Pod
		state     *podstate.PodState
		wantStart []StartAction
		wantLost  []string
	}{
		{"no witness: created", testPod(withEphemeral("debug", "app")), state(sb1, app), create, nil},
		{"record, runtime lost it: never again", testPod(withEphemeral("debug", "app")), withRecord(state(sb1, app), podstate.Record{ContainerID: "e1"}), nil, []string{"debug"}},
		{"reported terminated, record lost too: never again", testPod(withEphemeral("debug", "app"), reported(v1.ContainerStatus{ContainerID: "containerd://e1", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{}}})), state(sb1, app), nil, []string{"debug"}},
		{"reported running: never again", testPod(withEphemeral("debug", "app"), reported(v1.ContainerStatus{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}})), state(sb1, app), nil, []string{"debug"}},
		{"reported waiting without a container: not a witness", testPod(withEphemeral("debug", "app"), reported(v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}})), state(sb1, app), create, nil},
		{"whole sandbox removed (crictl rmp): never again", testPod(withEphemeral("debug", "app")), withRecord(state(nil), podstate.Record{ContainerID: "e1"}), nil, nil},
		{"start aborted by the agent's death: replaced", testPod(withEphemeral("debug", "app")), withRecord(state(sb1, app, aborted), podstate.Record{ContainerID: "e1"}), []StartAction{{Type: ephT, Name: "debug", Replaces: "e1"}}, nil},
		{"aborted again, replacements spent: final", testPod(withEphemeral("debug", "app")), withRecord(state(sb1, app, aborted), podstate.Record{ContainerID: "e1", Replacements: podstate.MaxReplacements}), nil, nil},
		{"replacement under way (record without container): created", testPod(withEphemeral("debug", "app"), reported(v1.ContainerStatus{ContainerID: "containerd://e1", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 128}}})), withRecord(state(sb1, app), podstate.Record{Replacements: 1}), create, nil},
		{"start refused by the runtime: final", testPod(withEphemeral("debug", "app")), withRecord(state(sb1, app, refused), podstate.Record{ContainerID: "e1"}), nil, nil},
		{"exited in an older sandbox: not again", testPod(withEphemeral("debug", "app")), state([]podstate.Sandbox{readySandbox("sb2", 1), deadSandbox("sb1", 0)}, ctr("c2", "sb2", regT, "app", running, 1, 0), ctr("e1", "sb1", ephT, "debug", exited, 0, 0)), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Plan(tc.pod, tc.state, t0)
			var starts []StartAction
			for _, st := range a.ContainersToStart {
				if st.Type == ephT {
					starts = append(starts, st)
				}
			}
			if !reflect.DeepEqual(starts, tc.wantStart) {
				t.Errorf("ephemeral starts = %+v, want %+v", starts, tc.wantStart)
			}
			if !reflect.DeepEqual(a.EphemeralLost, tc.wantLost) {
				t.Errorf("EphemeralLost = %v, want %v", a.EphemeralLost, tc.wantLost)
			}
		})
	}
}

// withDeadline sets spec.activeDeadlineSeconds, counted from a start at t0.
func withDeadline(seconds int64) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.ActiveDeadlineSeconds = ptr.To(seconds)
		start := metav1.NewTime(t0)
		p.Status.StartTime = &start
	}
}

// withContainerPolicy gives container app its own restart policy and rules.
func withContainerPolicy(policy v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].RestartPolicy = &policy
		p.Spec.Containers[0].RestartPolicyRules = rules
	}
}

// restartOn is a rule restarting on exit codes in (or, with notIn, not in)
// codes.
func restartOn(notIn bool, codes ...int32) v1.ContainerRestartRule {
	op := v1.ContainerRestartRuleOnExitCodesOpIn
	if notIn {
		op = v1.ContainerRestartRuleOnExitCodesOpNotIn
	}
	return v1.ContainerRestartRule{Action: v1.ContainerRestartRuleActionRestart, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
}

// TestPlanContainerRestartPolicy covers the ContainerRestartRules feature:
// a container's own restartPolicy and restartPolicyRules decide over the
// pod's, for regular and init containers.
func TestPlanContainerRestartPolicy(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	now := t0.Add(time.Hour)
	withSecond := func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "web", Image: "localhost/busybox:test"})
	}
	initPolicy := func(policy v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.InitContainers[0].RestartPolicy = &policy
			p.Spec.InitContainers[0].RestartPolicyRules = rules
		}
	}
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		want  Actions
	}{
		{
			name:  "container Never in a pod Always: not restarted, the other one runs on",
			pod:   testPod(withContainerPolicy(v1.ContainerRestartPolicyNever), withSecond),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 1), ctr("w1", "sb1", regT, "web", running, 0, 0)),
			want:  Actions{SandboxID: "sb1"},
		},
		{
			name:  "container Never in a pod Always, the only container: the pod is done",
			pod:   testPod(withContainerPolicy(v1.ContainerRestartPolicyNever)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "container Always in a pod Never: restarted",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyAlways)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "container OnFailure in a pod Always: exit 0 is final",
			pod:   testPod(withContainerPolicy(v1.ContainerRestartPolicyOnFailure)),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "a rule In matches the exit code: restarted though the policy is Never",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyNever, restartOn(false, 42))),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 42)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "a rule In does not match: the container's Never decides",
			pod:   testPod(withContainerPolicy(v1.ContainerRestartPolicyNever, restartOn(false, 42))),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 0, 1)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "a rule NotIn 0 restarts failures, with backoff",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyNever, restartOn(true, 0))),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 1, 3)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(regT, 0, "app", 2)}},
		},
		{
			name:  "a rule NotIn 0: success is final",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyNever, restartOn(true, 0))),
			state: state(sb1, ctr("c1", "sb1", regT, "app", exited, 1, 0)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "init container Never in a pod Always: its failure fails the pod",
			pod:   testPod(withInit("i1"), initPolicy(v1.ContainerRestartPolicyNever)),
			state: state(sb1, ctr("i1", "sb1", initT, "i1", exited, 0, 1)),
			want:  Actions{KillPod: true},
		},
		{
			name:  "init container with a rule matching its exit code in a pod Never: restarted",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withInit("i1"), initPolicy(v1.ContainerRestartPolicyNever, restartOn(false, 7))),
			state: state(sb1, ctr("i1", "sb1", initT, "i1", exited, 0, 7)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "i1", 1)}},
		},
		{
			name:  "init container OnFailure in a pod Never: restarted after a failure",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withInit("i1"), initPolicy(v1.ContainerRestartPolicyOnFailure)),
			state: state(sb1, ctr("i1", "sb1", initT, "i1", exited, 0, 1)),
			want:  Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 0, "i1", 1)}},
		},
		{
			name:  "dead sandbox, pod Never, a container Always: the pod restarts in a new sandbox",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyAlways)),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 137)),
			want:  Actions{CreateSandbox: true, SandboxAttempt: 1, ContainersToStart: []StartAction{start(regT, 0, "app", 1)}},
		},
		{
			name:  "liveness failed under pod Never: killed, not to be restarted",
			pod:   testPod(withPolicy(v1.RestartPolicyNever)),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Failed: podstate.Liveness}),
			want:  Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT, Message: "Container app failed liveness probe"}}},
		},
		{
			name:  "liveness failed, container Always in a pod Never: to be restarted",
			pod:   testPod(withPolicy(v1.RestartPolicyNever), withContainerPolicy(v1.ContainerRestartPolicyAlways)),
			state: probed(state(sb1, ctr("c1", "sb1", regT, "app", running, 0, 0)), "c1", podstate.Probed{Failed: podstate.Liveness}),
			want: Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "c1", Name: "app", Type: regT,
				Message: "Container app failed liveness probe, will be restarted"}}},
		},
		{
			name:  "new sandbox: a container OnFailure that succeeded is not run again",
			pod:   testPod(withContainerPolicy(v1.ContainerRestartPolicyOnFailure), withSecond),
			state: state([]podstate.Sandbox{deadSandbox("sb1", 0)}, ctr("c1", "sb1", regT, "app", exited, 0, 0), ctr("w1", "sb1", regT, "web", exited, 0, 137)),
			want:  Actions{CreateSandbox: true, SandboxAttempt: 1, ContainersToStart: []StartAction{start(regT, 1, "web", 1)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.pod, tc.state, now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan() =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// TestPlanSidecarStartupGate: a sidecar's startup probe holds back the next
// init container (and the regular containers) until it succeeds.
func TestPlanSidecarStartupGate(t *testing.T) {
	sb1 := []podstate.Sandbox{readySandbox("sb1", 0)}
	pod := testPod(podstatetest.WithSidecar("proxy"), withInit("i1"))
	run := func() *podstate.PodState { return state(sb1, ctr("s1", "sb1", initT, "proxy", running, 0, 0)) }
	for _, tc := range []struct {
		name  string
		state *podstate.PodState
		want  Actions
	}{
		{"no prober: running is started", run(), Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 1, "i1", 0)}}},
		{"startup probe pending: the next init container waits", probed(run(), "s1", podstate.Probed{}), Actions{SandboxID: "sb1"}},
		{"startup probe succeeded: the next one starts", probed(run(), "s1", podstate.Probed{Started: true}), Actions{SandboxID: "sb1", ContainersToStart: []StartAction{start(initT, 1, "i1", 0)}}},
		{"startup probe failed: killed, the next one waits", probed(run(), "s1", podstate.Probed{Failed: podstate.Startup}),
			Actions{SandboxID: "sb1", ContainersToKill: []KillAction{{ContainerID: "s1", Name: "proxy", Type: initT, Message: "Init container proxy failed startup probe"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(pod, tc.state, t0.Add(time.Hour))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan() =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// TestPlanOldSandboxes is the kubelet's sandbox GC rule (evictSandboxes):
// a sandbox goes once it is not ready, holds no container of any state and
// is not the pod's newest; every such sandbox goes once the pod is gone
// from the API.
func TestPlanOldSandboxes(t *testing.T) {
	deleting := func(p *v1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }
	sandboxes := func(sbs ...podstate.Sandbox) []podstate.Sandbox { return sbs }
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod // nil: gone from the API
		state *podstate.PodState
		want  []string
	}{
		{
			name:  "one dead empty sandbox: the newest stays",
			pod:   testPod(),
			state: state(sandboxes(deadSandbox("sb1", 0))),
		},
		{
			name: "older dead empty sandboxes go, the ready newest stays",
			pod:  testPod(),
			state: state(sandboxes(deadSandbox("sb1", 0), deadSandbox("sb2", 1), readySandbox("sb3", 2)),
				ctr("c3", "sb3", regT, "app", running, 2, 0)),
			want: []string{"sb2", "sb1"},
		},
		{
			name: "a dead newest stays while older empty ones go",
			pod:  testPod(),
			state: state(sandboxes(deadSandbox("sb1", 0), deadSandbox("sb2", 1)),
				ctr("c2", "sb2", regT, "app", exited, 1, 0)),
			want: []string{"sb1"},
		},
		{
			name: "an exited container keeps its sandbox",
			pod:  testPod(),
			state: state(sandboxes(deadSandbox("sb1", 0), readySandbox("sb2", 1)),
				ctr("c1", "sb1", regT, "app", exited, 0, 1), ctr("c2", "sb2", regT, "app", running, 1, 0)),
		},
		{
			name: "a created, never started container keeps its sandbox",
			pod:  testPod(),
			state: state(sandboxes(deadSandbox("sb1", 0), readySandbox("sb2", 1)),
				ctr("c1", "sb1", initT, "i1", created, 0, 0)),
		},
		{
			name: "an exited ephemeral container keeps its sandbox: the witness that it ran",
			pod:  testPod(withEphemeral("debugger", "app")),
			state: state(sandboxes(deadSandbox("sb1", 0), readySandbox("sb2", 1)),
				ctr("e1", "sb1", ephT, "debugger", exited, 0, 0), ctr("c2", "sb2", regT, "app", running, 1, 0)),
		},
		{
			name:  "an older sandbox that is still ready stays",
			pod:   testPod(),
			state: state(sandboxes(readySandbox("sb1", 0), readySandbox("sb2", 1))),
		},
		{
			name: "of a pod being deleted, the newest stays",
			pod:  testPod(deleting),
			state: state(sandboxes(deadSandbox("sb1", 0), deadSandbox("sb2", 1)),
				ctr("c2", "sb2", regT, "app", exited, 1, 0)),
			want: []string{"sb1"},
		},
		{
			name:  "of a finished pod, the newest stays",
			pod:   testPod(withPolicy(v1.RestartPolicyNever)),
			state: state(sandboxes(deadSandbox("sb1", 0), deadSandbox("sb2", 1)), ctr("c2", "sb2", regT, "app", exited, 1, 0)),
			want:  []string{"sb1"},
		},
		{
			name: "of a pod gone from the API, every dead empty sandbox, the newest too",
			state: state(sandboxes(deadSandbox("sb1", 0), deadSandbox("sb2", 1), readySandbox("sb3", 2), deadSandbox("sb4", 3)),
				ctr("c2", "sb2", regT, "app", exited, 1, 0)),
			want: []string{"sb4", "sb1"},
		},
		{
			name:  "no sandbox",
			pod:   testPod(),
			state: state(nil),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.pod, tc.state, t0.Add(time.Hour)).SandboxesToRemove
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SandboxesToRemove = %v, want %v", got, tc.want)
			}
		})
	}
}

// Sandbox GC goes with the plan's other actions, and stays when volumes
// fail: removing a dead sandbox needs none.
func TestPlanOldSandboxesWithOtherActions(t *testing.T) {
	pod := testPod()
	st := state([]podstate.Sandbox{deadSandbox("sb1", 0), deadSandbox("sb2", 1)}, ctr("c2", "sb2", regT, "app", exited, 1, 0))
	want := Actions{KillPod: false, CreateSandbox: true, SandboxAttempt: 2,
		ContainersToStart: []StartAction{start(regT, 0, "app", 2)}, SandboxesToRemove: []string{"sb1"}}
	got := Plan(pod, st, t0.Add(time.Hour))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plan() =\n  %+v\nwant\n  %+v", got, want)
	}
	if w := got.withoutVolumes(pod); !reflect.DeepEqual(w.SandboxesToRemove, []string{"sb1"}) {
		t.Errorf("withoutVolumes dropped the sandboxes to remove: %+v", w)
	}
}
