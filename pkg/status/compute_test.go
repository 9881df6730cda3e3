package status

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

var (
	t0   = podstatetest.T0
	node = NodeInfo{HostIPs: []string{"127.0.0.1"}, RuntimeName: "containerd"}
	pod  = podstatetest.Pod
)

const (
	running = podstatetest.Running
	exited  = podstatetest.Exited
	created = podstatetest.Created
	reg     = podstatetest.Regular
	eph     = podstatetest.Ephemeral
	ini     = podstatetest.Init
)

// ephemeral adds ephemeral containers of those names, targeting "app".
func ephemeral(names ...string) func(*v1.Pod) { return podstatetest.WithEphemeral("app", names...) }

// ctr is a container of the pod's one sandbox, with the runtime's reason.
func ctr(id string, typ criconfig.ContainerType, name string, st runtimeapi.ContainerState, attempt int, exit int32, reason string) podstate.Container {
	c := podstatetest.Ctr(id, "sb1", typ, name, st, attempt, exit)
	c.Reason = reason
	return c
}

// podState is the pod's state with one ready sandbox.
func podState(cs ...podstate.Container) *podstate.PodState {
	return podstatetest.State([]podstate.Sandbox{podstatetest.ReadySandbox("sb1", 0)}, cs...)
}

func TestEphemeralContainerStatuses(t *testing.T) {
	appRunning := ctr("c1", reg, "app", running, 0, 0, "")
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		state   *podstate.PodState
		waiting map[podstate.ContainerKey]podstate.Waiting
		check   func(t *testing.T, s v1.ContainerStatus)
	}{
		{
			name:  "not created yet: ContainerCreating",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Waiting == nil || s.State.Waiting.Reason != "ContainerCreating" {
					t.Errorf("state = %+v", s.State)
				}
			},
		},
		{
			name: "pod with init containers: PodInitializing",
			pod: pod(ephemeral("debug"), func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "x"}}
			}),
			state: podState(ctr("i1", ini, "init", running, 0, 0, "")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
					t.Errorf("state = %+v", s.State)
				}
			},
		},
		{
			name:    "start failed: the error's reason",
			pod:     pod(ephemeral("debug")),
			state:   podState(appRunning),
			waiting: map[podstate.ContainerKey]podstate.Waiting{{Type: eph, Name: "debug"}: {Reason: "CreateContainerConfigError", Message: "unable to find target container app"}},
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Waiting == nil || s.State.Waiting.Reason != "CreateContainerConfigError" || s.State.Waiting.Message != "unable to find target container app" {
					t.Errorf("state = %+v", s.State)
				}
			},
		},
		{
			name:  "running",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning, ctr("e1", eph, "debug", running, 0, 0, "")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Running == nil || s.ContainerID != "containerd://e1" || s.Ready || s.RestartCount != 0 || s.ImageID != "sha256:abc" {
					t.Errorf("status = %+v", s)
				}
			},
		},
		{
			name:  "exited 0: Completed",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning, ctr("e1", eph, "debug", exited, 0, 0, "")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || s.State.Terminated.ContainerID != "containerd://e1" || s.State.Terminated.FinishedAt.IsZero() {
					t.Errorf("state = %+v", s.State.Terminated)
				}
			},
		},
		{
			name:  "exited 3: Error",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning, ctr("e1", eph, "debug", exited, 0, 3, "")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Terminated == nil || s.State.Terminated.Reason != "Error" || s.State.Terminated.ExitCode != 3 {
					t.Errorf("state = %+v", s.State.Terminated)
				}
			},
		},
		{
			name:  "OOM killed",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning, ctr("e1", eph, "debug", exited, 0, 137, "OOMKilled")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Terminated == nil || s.State.Terminated.Reason != "OOMKilled" {
					t.Errorf("state = %+v", s.State.Terminated)
				}
			},
		},
		{
			name:  "created, not started: ContainerCreating",
			pod:   pod(ephemeral("debug")),
			state: podState(appRunning, ctr("e1", eph, "debug", created, 0, 0, "")),
			check: func(t *testing.T, s v1.ContainerStatus) {
				if s.State.Waiting == nil || s.State.Waiting.Reason != "ContainerCreating" || s.ContainerID != "containerd://e1" {
					t.Errorf("status = %+v", s)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, tc.waiting, node, t0)
			if len(s.EphemeralContainerStatuses) != 1 {
				t.Fatalf("%d ephemeral statuses, want 1", len(s.EphemeralContainerStatuses))
			}
			tc.check(t, s.EphemeralContainerStatuses[0])
			if s.Phase != v1.PodRunning && len(tc.pod.Spec.InitContainers) == 0 {
				t.Errorf("phase = %s: an ephemeral container never changes the pod's phase", s.Phase)
			}
		})
	}
}

func TestEphemeralStatusesSortedByName(t *testing.T) {
	s := Compute(pod(ephemeral("zeta", "alpha", "mid")), podState(), nil, node, t0)
	var names []string
	for _, c := range s.EphemeralContainerStatuses {
		names = append(names, c.Name)
	}
	if len(names) != 3 || names[0] != "alpha" || names[1] != "mid" || names[2] != "zeta" {
		t.Errorf("order = %v, want alpha mid zeta", names)
	}
}

func TestPhase(t *testing.T) {
	policy := func(pol v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].RestartPolicy, p.Spec.Containers[0].RestartPolicyRules = &pol, rules
		}
	}
	second := func(p *v1.Pod) { p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "web"}) }
	rule42 := v1.ContainerRestartRule{Action: v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}
	probes := func(s *podstate.PodState, p map[string]podstate.Probed) *podstate.PodState { s.Probes = p; return s }
	never := func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever }
	onFailure := func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyOnFailure }
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		want  v1.PodPhase
	}{
		{"nothing yet", pod(), &podstate.PodState{}, v1.PodPending},
		{"running", pod(), podState(ctr("c1", reg, "app", running, 0, 0, "")), v1.PodRunning},
		{"Never, exit 0", pod(never), podState(ctr("c1", reg, "app", exited, 0, 0, "")), v1.PodSucceeded},
		{"Never, exit 3", pod(never), podState(ctr("c1", reg, "app", exited, 0, 3, "")), v1.PodFailed},
		{"OnFailure, exit 0", pod(onFailure), podState(ctr("c1", reg, "app", exited, 0, 0, "")), v1.PodSucceeded},
		{"Always, exited", pod(), podState(ctr("c1", reg, "app", exited, 0, 1, "")), v1.PodRunning},
		{"init running", pod(func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "i"}} }), podState(ctr("i1", ini, "i", running, 0, 0, "")), v1.PodPending},
		{"init failed under Never", pod(never, func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "i"}} }), podState(ctr("i1", ini, "i", exited, 0, 1, "")), v1.PodFailed},
		// Container restart policies and rules (ContainerRestartRules).
		{"container Never in a pod Always, exit 1", pod(policy(v1.ContainerRestartPolicyNever)), podState(ctr("c1", reg, "app", exited, 0, 1, "")), v1.PodFailed},
		{"container Never in a pod Always, exit 0", pod(policy(v1.ContainerRestartPolicyNever)), podState(ctr("c1", reg, "app", exited, 0, 0, "")), v1.PodSucceeded},
		{"container Never, another still running", pod(policy(v1.ContainerRestartPolicyNever), second), podState(ctr("c1", reg, "app", exited, 0, 1, ""), ctr("w1", reg, "web", running, 0, 0, "")), v1.PodRunning},
		{"container Always in a pod Never: restarting", pod(never, policy(v1.ContainerRestartPolicyAlways)), podState(ctr("c1", reg, "app", exited, 0, 0, "")), v1.PodRunning},
		{"a rule restarts exit 42: not terminal", pod(never, policy(v1.ContainerRestartPolicyNever, rule42)), podState(ctr("c1", reg, "app", exited, 0, 42, "")), v1.PodRunning},
		{"a rule restarts exit 42, exit 1 is final", pod(never, policy(v1.ContainerRestartPolicyNever, rule42)), podState(ctr("c1", reg, "app", exited, 0, 1, "")), v1.PodFailed},
		{"init Never in a pod Always fails the pod", pod(func(p *v1.Pod) {
			nv := v1.ContainerRestartPolicyNever
			p.Spec.InitContainers = []v1.Container{{Name: "i", RestartPolicy: &nv}}
		}), podState(ctr("i1", ini, "i", exited, 0, 1, "")), v1.PodFailed},
		{"init failing in a pod Never with a rule for its code: pending", pod(never, func(p *v1.Pod) {
			nv := v1.ContainerRestartPolicyNever
			p.Spec.InitContainers = []v1.Container{{Name: "i", RestartPolicy: &nv, RestartPolicyRules: []v1.ContainerRestartRule{rule42}}}
		}), podState(ctr("i1", ini, "i", exited, 0, 42, "")), v1.PodPending},
		{"sidecar running, startup probe pending: pending", pod(podstatetest.WithSidecar("proxy")),
			probes(podState(ctr("s1", ini, "proxy", running, 0, 0, "")), map[string]podstate.Probed{"s1": {}}), v1.PodPending},
		{"sidecar started, app running", pod(podstatetest.WithSidecar("proxy")),
			probes(podState(ctr("s1", ini, "proxy", running, 0, 0, ""), ctr("c1", reg, "app", running, 0, 0, "")), map[string]podstate.Probed{"s1": {Started: true}, "c1": {Started: true}}), v1.PodRunning},
		{"sidecar restarting after the app ran: not pending again", pod(podstatetest.WithSidecar("proxy")),
			probes(podState(ctr("s1", ini, "proxy", running, 1, 0, ""), ctr("c1", reg, "app", running, 0, 0, "")), map[string]podstate.Probed{"s1": {}, "c1": {Started: true}}), v1.PodRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Compute(tc.pod, tc.state, nil, node, t0).Phase; got != tc.want {
				t.Errorf("phase = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCrashLoopBackOffStatus(t *testing.T) {
	st := podState(ctr("c2", reg, "app", exited, 1, 2, ""), ctr("c1", reg, "app", exited, 0, 2, ""))
	w := map[podstate.ContainerKey]podstate.Waiting{{Type: reg, Name: "app"}: {Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=app pod=app_default(uid-1)"}}
	s := Compute(pod(), st, w, node, t0)
	cs := s.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 1 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ContainerID != "containerd://c2" {
		t.Errorf("status = %+v", cs)
	}
	if s.Phase != v1.PodRunning {
		t.Errorf("phase = %s, want Running", s.Phase)
	}
	for _, c := range s.Conditions {
		if c.Type == v1.PodReady && (c.Status != v1.ConditionFalse || c.Reason != "ContainersNotReady") {
			t.Errorf("Ready = %+v", c)
		}
	}
}

func TestConditionsKeepTransitionTimes(t *testing.T) {
	p := pod()
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	p.Status.Conditions = []v1.PodCondition{
		{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: earlier},
		{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: earlier},
	}
	s := Compute(p, podState(ctr("c1", reg, "app", running, 0, 0, "")), nil, node, t0)
	var sawScheduled bool
	for _, c := range s.Conditions {
		switch c.Type {
		case v1.PodReady:
			if !c.LastTransitionTime.Equal(&earlier) {
				t.Errorf("Ready transition moved to %v", c.LastTransitionTime)
			}
		case v1.PodScheduled:
			sawScheduled = true
		}
	}
	if !sawScheduled {
		t.Error("PodScheduled, owned by the scheduler, was dropped")
	}
	if s.PodIP != "10.88.2.5" || s.HostIP != "127.0.0.1" || s.QOSClass != v1.PodQOSBestEffort {
		t.Errorf("podIP %s hostIP %s qos %s", s.PodIP, s.HostIP, s.QOSClass)
	}
}

func TestProbedReadiness(t *testing.T) {
	withProbes := func(p map[string]podstate.Probed, cs ...podstate.Container) *podstate.PodState {
		s := podState(cs...)
		s.Probes = p
		return s
	}
	app := ctr("c1", reg, "app", running, 0, 0, "")
	proxy := ctr("s1", ini, "proxy", running, 0, 0, "")
	for _, tc := range []struct {
		name                  string
		pod                   *v1.Pod
		state                 *podstate.PodState
		ready, started        bool
		podReady, initialized v1.ConditionStatus
	}{
		{"no prober: ready once running", pod(), withProbes(nil, app), true, true, v1.ConditionTrue, v1.ConditionTrue},
		{"readiness failing", pod(), withProbes(map[string]podstate.Probed{"c1": {Started: true}}, app), false, true, v1.ConditionFalse, v1.ConditionTrue},
		{"not started", pod(), withProbes(map[string]podstate.Probed{"c1": {}}, app), false, false, v1.ConditionFalse, v1.ConditionTrue},
		{"ready", pod(), withProbes(map[string]podstate.Probed{"c1": {Started: true, Ready: true}}, app), true, true, v1.ConditionTrue, v1.ConditionTrue},
		{"unknown to the prober: not ready", pod(), withProbes(map[string]podstate.Probed{}, app), false, false, v1.ConditionFalse, v1.ConditionTrue},
		{"sidecar not ready but started: initialized", pod(podstatetest.WithSidecar("proxy")),
			withProbes(map[string]podstate.Probed{"c1": {Started: true, Ready: true}, "s1": {Started: true}}, proxy, app), true, true, v1.ConditionFalse, v1.ConditionTrue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, nil, node, t0)
			statuses := s.ContainerStatuses
			if len(statuses) == 0 || statuses[0].State.Running == nil {
				// The sidecar alone runs: its status tells.
				statuses = s.InitContainerStatuses
			}
			cs := statuses[0]
			if cs.Ready != tc.ready || cs.Started == nil || *cs.Started != tc.started {
				t.Errorf("ready %v started %v, want %v %v", cs.Ready, *cs.Started, tc.ready, tc.started)
			}
			for _, c := range s.Conditions {
				if c.Type == v1.PodReady && c.Status != tc.podReady {
					t.Errorf("Ready = %s, want %s", c.Status, tc.podReady)
				}
				if c.Type == v1.PodInitialized && c.Status != tc.initialized {
					t.Errorf("Initialized = %s, want %s", c.Status, tc.initialized)
				}
			}
		})
	}
}

func TestInitContainerReady(t *testing.T) {
	withInit := func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "i"}} }
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		state   *podstate.PodState
		waiting map[podstate.ContainerKey]podstate.Waiting
		want    bool
	}{
		{"running", pod(withInit), podState(ctr("i1", ini, "i", running, 0, 0, "")), nil, false},
		{"completed: ready, as the kubelet's", pod(withInit), podState(ctr("i1", ini, "i", exited, 0, 0, ""), ctr("c1", reg, "app", running, 0, 0, "")), nil, true},
		{"failed", pod(withInit), podState(ctr("i1", ini, "i", exited, 0, 1, "")), nil, false},
		{"failed, waiting to restart", pod(withInit), podState(ctr("i1", ini, "i", exited, 0, 1, "")),
			map[podstate.ContainerKey]podstate.Waiting{{Type: ini, Name: "i"}: {Reason: "CrashLoopBackOff"}}, false},
		{"sidecar exited 0: not ready", pod(podstatetest.WithSidecar("i")), podState(ctr("i1", ini, "i", exited, 0, 0, "")), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, tc.waiting, node, t0)
			if got := s.InitContainerStatuses[0].Ready; got != tc.want {
				t.Errorf("ready = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadinessGates(t *testing.T) {
	gates := func(types ...v1.PodConditionType) func(*v1.Pod) {
		return func(p *v1.Pod) {
			for _, c := range types {
				p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, v1.PodReadinessGate{ConditionType: c})
			}
		}
	}
	cond := func(typ v1.PodConditionType, st v1.ConditionStatus) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: typ, Status: st})
		}
	}
	app := podState(ctr("c1", reg, "app", running, 0, 0, ""))
	for _, tc := range []struct {
		name                  string
		pod                   *v1.Pod
		state                 *podstate.PodState
		containersReady, want v1.PodCondition
	}{
		{"no gates", pod(), app,
			v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}, v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}},
		{"gate true", pod(gates("example.com/lb"), cond("example.com/lb", v1.ConditionTrue)), app,
			v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}, v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}},
		{"gate missing", pod(gates("example.com/lb")), app,
			v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue},
			v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "ReadinessGatesNotReady", Message: `corresponding condition of pod readiness gate "example.com/lb" does not exist.`}},
		{"one gate false, one missing", pod(gates("a", "b"), cond("a", v1.ConditionFalse)), app,
			v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue},
			v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "ReadinessGatesNotReady",
				Message: `the status of pod readiness gate "a" is not "True", but False, corresponding condition of pod readiness gate "b" does not exist.`}},
		{"containers not ready: their reason, whatever the gates", pod(gates("a"), cond("a", v1.ConditionTrue)), podState(),
			v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [app]"},
			v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [app]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, nil, node, t0)
			got := map[v1.PodConditionType]v1.PodCondition{}
			for _, c := range s.Conditions {
				c.LastTransitionTime = metav1.Time{}
				got[c.Type] = c
			}
			if got[v1.ContainersReady] != tc.containersReady {
				t.Errorf("ContainersReady = %+v, want %+v", got[v1.ContainersReady], tc.containersReady)
			}
			if got[v1.PodReady] != tc.want {
				t.Errorf("Ready = %+v, want %+v", got[v1.PodReady], tc.want)
			}
			// The gates' conditions belong to whoever set them: kept as they are.
			for _, c := range tc.pod.Status.Conditions {
				if g := got[c.Type]; g.Status != c.Status {
					t.Errorf("condition %s = %+v, want it kept as %s", c.Type, g, c.Status)
				}
			}
		})
	}
}

func TestActiveDeadline(t *testing.T) {
	deadline := func(seconds int64, phase v1.PodPhase, reason string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.ActiveDeadlineSeconds = &seconds
			start := metav1.NewTime(t0)
			p.Status.StartTime = &start
			p.Status.Phase, p.Status.Reason = phase, reason
		}
	}
	never := func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever }
	appRunning := podState(ctr("c1", reg, "app", running, 0, 0, ""))
	appKilled := podState(ctr("c1", reg, "app", exited, 0, 137, ""))
	for _, tc := range []struct {
		name   string
		pod    *v1.Pod
		state  *podstate.PodState
		now    time.Time
		phase  v1.PodPhase
		reason string
	}{
		{"before the deadline", pod(deadline(60, v1.PodRunning, "")), appRunning, t0.Add(59 * time.Second), v1.PodRunning, ""},
		{"at the deadline: Failed", pod(deadline(60, v1.PodRunning, "")), appRunning, t0.Add(time.Minute), v1.PodFailed, "DeadlineExceeded"},
		{"killed past the deadline: still DeadlineExceeded", pod(never, deadline(60, v1.PodFailed, "DeadlineExceeded")), appKilled, t0.Add(2 * time.Minute), v1.PodFailed, "DeadlineExceeded"},
		{"succeeded before the deadline: kept", pod(never, deadline(60, v1.PodSucceeded, "")), podState(ctr("c1", reg, "app", exited, 0, 0, "")), t0.Add(2 * time.Minute), v1.PodSucceeded, ""},
		{"failed otherwise before the deadline: kept", pod(never, deadline(60, v1.PodFailed, "")), podState(ctr("c1", reg, "app", exited, 0, 1, "")), t0.Add(2 * time.Minute), v1.PodFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, nil, node, tc.now)
			if s.Phase != tc.phase || s.Reason != tc.reason {
				t.Errorf("phase %s reason %q, want %s %q", s.Phase, s.Reason, tc.phase, tc.reason)
			}
			if want := map[bool]string{true: podstate.MessageDeadlineExceeded}[tc.reason != ""]; s.Message != want {
				t.Errorf("message %q, want %q", s.Message, want)
			}
		})
	}
}
