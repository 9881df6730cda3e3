package status

import (
	"encoding/json"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// reported sets the pod's status in the API to hold those ephemeral
// container statuses.
func reported(statuses ...v1.ContainerStatus) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Status.EphemeralContainerStatuses = statuses }
}

// withRecords adds start records to a state.
func withRecords(s *podstate.PodState, records map[string]podstate.Record) *podstate.PodState {
	s.Records = records
	return s
}

func TestLostEphemeralContainer(t *testing.T) {
	appRunning := ctr("c1", reg, "app", running, 0, 0, "")
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	finished := metav1.NewTime(t0.Add(-time.Minute))
	reportedDone := &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: earlier, FinishedAt: finished, ContainerID: "containerd://e1"}
	for _, tc := range []struct {
		name      string
		pod       *v1.Pod
		state     *podstate.PodState
		want      *v1.ContainerStateTerminated
		wantID    string
		wantImage string
	}{
		{
			name:   "start record only: ContainerStatusUnknown, ID from the record",
			pod:    pod(ephemeral("debug")),
			state:  withRecords(podState(appRunning), map[string]podstate.Record{"debug": {ContainerID: "e1"}}),
			want:   &v1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: MessageEphemeralLost, FinishedAt: metav1.NewTime(t0), ContainerID: "containerd://e1"},
			wantID: "containerd://e1",
		},
		{
			name: "reported terminated: kept exactly",
			pod: pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1", ImageID: "sha256:abc",
				State: v1.ContainerState{Terminated: reportedDone}})),
			state:     withRecords(podState(appRunning), map[string]podstate.Record{"debug": {ContainerID: "e2"}}),
			want:      reportedDone,
			wantID:    "containerd://e1",
			wantImage: "sha256:abc",
		},
		{
			name: "lost after Running: started then, finished now, reported ID",
			pod: pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1", ImageID: "sha256:abc",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: earlier}}})),
			state:     podState(appRunning),
			want:      &v1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: MessageEphemeralLost, StartedAt: earlier, FinishedAt: metav1.NewTime(t0), ContainerID: "containerd://e1"},
			wantID:    "containerd://e1",
			wantImage: "sha256:abc",
		},
		{
			name: "reported Waiting with a container ID (created, not started): lost",
			pod: pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1",
				State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}})),
			state:  podState(appRunning),
			want:   &v1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: MessageEphemeralLost, FinishedAt: metav1.NewTime(t0), ContainerID: "containerd://e1"},
			wantID: "containerd://e1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compute(tc.pod, tc.state, nil, node, t0)
			cs := s.EphemeralContainerStatuses[0]
			expectEqual(t, "terminated state", tc.want, cs.State.Terminated)
			if cs.State.Running != nil || cs.State.Waiting != nil {
				t.Errorf("state %+v has more than Terminated", cs.State)
			}
			if cs.ContainerID != tc.wantID || cs.ImageID != tc.wantImage {
				t.Errorf("containerID %q imageID %q, want %q %q", cs.ContainerID, cs.ImageID, tc.wantID, tc.wantImage)
			}
			if cs.Started == nil || *cs.Started || cs.Ready || cs.RestartCount != 0 {
				t.Errorf("started %v ready %v restarts %d, want false false 0", cs.Started, cs.Ready, cs.RestartCount)
			}
			if s.Phase != v1.PodRunning {
				t.Errorf("phase %s: an ephemeral container never changes the pod's phase", s.Phase)
			}
		})
	}
}

// A lost container reported once is reported the same from then on: the
// status is stable, so it is not patched again at every sync.
func TestLostEphemeralContainerIsStable(t *testing.T) {
	p := pod(ephemeral("debug"))
	st := withRecords(podState(ctr("c1", reg, "app", running, 0, 0, "")), map[string]podstate.Record{"debug": {ContainerID: "e1"}})
	p.Status = Compute(p, st, nil, node, t0)
	again := Compute(p, st, nil, node, t0.Add(time.Hour))
	expectEqual(t, "lost status changed an hour later", p.Status.EphemeralContainerStatuses, again.EphemeralContainerStatuses)
}

func TestTerminatedReasons(t *testing.T) {
	const execMsg = `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "sh": executable file not found in $PATH: unknown`
	for _, tc := range []struct {
		name              string
		exit              int32
		reason, message   string
		wantReason, wantM string
	}{
		{"start refused: StartError kept with its message", 128, "StartError", execMsg, "StartError", execMsg},
		{"OOMKilled", 137, "OOMKilled", "", "OOMKilled", ""},
		{"ContainerCannotRun", 128, "ContainerCannotRun", "no such file", "ContainerCannotRun", "no such file"},
		{"runtime's own Error kept", 2, "Error", "exit status 2", "Error", "exit status 2"},
		{"no reason, exit 0: Completed", 0, "", "", "Completed", ""},
		{"no reason, exit 3: Error", 3, "", "", "Error", ""},
	} {
		for _, typ := range []struct {
			typ  string
			pod  *v1.Pod
			cs   func(v1.PodStatus) v1.ContainerStatus
			ctrs func(podstate.Container) *podstate.PodState
		}{
			{
				typ: "ephemeral",
				pod: pod(ephemeral("debug")),
				cs:  func(s v1.PodStatus) v1.ContainerStatus { return s.EphemeralContainerStatuses[0] },
				ctrs: func(c podstate.Container) *podstate.PodState {
					return podState(ctr("c1", reg, "app", running, 0, 0, ""), c)
				},
			},
			{
				typ:  "regular, restart policy Never",
				pod:  pod(podstatetest.WithPolicy(v1.RestartPolicyNever)),
				cs:   func(s v1.PodStatus) v1.ContainerStatus { return s.ContainerStatuses[0] },
				ctrs: func(c podstate.Container) *podstate.PodState { return podState(c) },
			},
		} {
			t.Run(typ.typ+"/"+tc.name, func(t *testing.T) {
				kind, name := eph, "debug"
				if typ.typ != "ephemeral" {
					kind, name = reg, "app"
				}
				c := ctr("x1", kind, name, exited, 0, tc.exit, tc.reason)
				c.Message = tc.message
				cs := typ.cs(Compute(typ.pod, typ.ctrs(c), nil, node, t0))
				term := cs.State.Terminated
				if term == nil {
					t.Fatalf("state %+v, want Terminated", cs.State)
				}
				if term.Reason != tc.wantReason || term.Message != tc.wantM || term.ExitCode != tc.exit || term.ContainerID != "containerd://x1" {
					t.Errorf("terminated %+v, want reason %q message %q exit %d", term, tc.wantReason, tc.wantM, tc.exit)
				}
			})
		}
	}
}

func TestUnknownContainerState(t *testing.T) {
	appRunning := ctr("c1", reg, "app", running, 0, 0, "")
	unknownEph := ctr("e1", eph, "debug", podstatetest.Unknown, 0, 0, "")
	t.Run("ephemeral: Terminated ContainerStatusUnknown", func(t *testing.T) {
		cs := Compute(pod(ephemeral("debug")), podState(appRunning, unknownEph), nil, node, t0).EphemeralContainerStatuses[0]
		want := &v1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The container could not be located when the pod was terminated",
			StartedAt: metav1.NewTime(unknownEph.StartedAt), FinishedAt: metav1.NewTime(t0), ContainerID: "containerd://e1"}
		expectEqual(t, "terminated state", want, cs.State.Terminated)
		if cs.ContainerID != "containerd://e1" || *cs.Started || cs.Ready {
			t.Errorf("status %+v", cs)
		}
	})
	t.Run("ephemeral, reported terminated: kept exactly", func(t *testing.T) {
		done := &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", ContainerID: "containerd://e1", FinishedAt: metav1.NewTime(t0.Add(-time.Minute))}
		p := pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1", State: v1.ContainerState{Terminated: done}}))
		cs := Compute(p, podState(appRunning, unknownEph), nil, node, t0).EphemeralContainerStatuses[0]
		expectEqual(t, "terminated state", done, cs.State.Terminated)
	})
	t.Run("regular: Waiting, as today", func(t *testing.T) {
		cs := Compute(pod(), podState(ctr("c1", reg, "app", podstatetest.Unknown, 0, 0, "")), nil, node, t0).ContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Terminated != nil {
			t.Errorf("state %+v, want Waiting", cs.State)
		}
	})
}

// An ephemeral container whose start the agent's own death aborted is
// created again by the plan: until it is, it waits, and only once the
// replacements are used up is its exit its end.
func TestAbortedEphemeralStart(t *testing.T) {
	aborted := ctr("e1", eph, "debug", exited, 0, 128, "StartError")
	aborted.StartedAt = time.Time{}
	aborted.Message = "failed to create containerd task: failed to create shim task: context canceled: unknown"
	appRunning := ctr("c1", reg, "app", running, 0, 0, "")
	t.Run("replacements left: Waiting", func(t *testing.T) {
		st := withRecords(podState(appRunning, aborted), map[string]podstate.Record{"debug": {ContainerID: "e1", Replacements: 1}})
		cs := Compute(pod(ephemeral("debug")), st, nil, node, t0).EphemeralContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" || cs.ContainerID != "" {
			t.Errorf("status %+v, want Waiting ContainerCreating without the aborted container's ID", cs)
		}
	})
	t.Run("replacement under way (record without ID), aborted one removed: Waiting", func(t *testing.T) {
		p := pod(ephemeral("debug"), reported(v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1",
			State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}))
		st := withRecords(podState(appRunning), map[string]podstate.Record{"debug": {Replacements: 1}})
		cs := Compute(p, st, nil, node, t0).EphemeralContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" {
			t.Errorf("status %+v, want Waiting ContainerCreating", cs)
		}
	})
	t.Run("replacements used up: its StartError", func(t *testing.T) {
		st := withRecords(podState(appRunning, aborted), map[string]podstate.Record{"debug": {ContainerID: "e1", Replacements: podstate.MaxReplacements}})
		cs := Compute(pod(ephemeral("debug")), st, nil, node, t0).EphemeralContainerStatuses[0]
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != "StartError" || cs.State.Terminated.Message != aborted.Message {
			t.Errorf("status %+v, want Terminated StartError", cs)
		}
	})
}

func TestNoRegression(t *testing.T) {
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	term := func(id string, exit int32) v1.ContainerStatus {
		f := false
		return v1.ContainerStatus{Name: "c", ContainerID: id, ImageID: "sha256:old", Started: &f,
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: exit, Reason: "Completed", ContainerID: id, FinishedAt: earlier}}}
	}
	run := func(id string, restarts int32) v1.ContainerStatus {
		tr := true
		return v1.ContainerStatus{Name: "c", ContainerID: id, ImageID: "sha256:new", Started: &tr, Ready: true, RestartCount: restarts,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: earlier}}}
	}
	wait := func(id string, restarts int32) v1.ContainerStatus {
		f := false
		return v1.ContainerStatus{Name: "c", ContainerID: id, Started: &f, RestartCount: restarts,
			State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	}
	ephemeralList := func(cs ...v1.ContainerStatus) v1.PodStatus { return v1.PodStatus{EphemeralContainerStatuses: cs} }
	regularList := func(cs ...v1.ContainerStatus) v1.PodStatus { return v1.PodStatus{ContainerStatuses: cs} }
	initList := func(cs ...v1.ContainerStatus) v1.PodStatus { return v1.PodStatus{InitContainerStatuses: cs} }
	withC := func(p *v1.Pod) {
		p.Spec.Containers = []v1.Container{{Name: "c", Image: "x"}}
		p.Spec.InitContainers = []v1.Container{{Name: "c", Image: "x"}}
		p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "c", Image: "x"}}}
	}
	sidecar := func(p *v1.Pod) {
		always := v1.ContainerRestartPolicyAlways
		p.Spec.InitContainers[0].RestartPolicy = &always
	}
	ctrPolicy := func(pol v1.ContainerRestartPolicy, rules ...v1.ContainerRestartRule) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].RestartPolicy, p.Spec.Containers[0].RestartPolicyRules = &pol, rules
		}
	}
	rule42 := v1.ContainerRestartRule{Action: v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}
	never := podstatetest.WithPolicy(v1.RestartPolicyNever)
	onFailure := podstatetest.WithPolicy(v1.RestartPolicyOnFailure)
	for _, tc := range []struct {
		name          string
		pod           *v1.Pod
		old, new, out v1.PodStatus
	}{
		{"ephemeral terminated -> running: kept terminated", pod(withC), ephemeralList(term("containerd://e1", 0)), ephemeralList(run("containerd://e2", 0)), ephemeralList(term("containerd://e1", 0))},
		{"ephemeral terminated -> waiting: kept terminated", pod(withC), ephemeralList(term("containerd://e1", 1)), ephemeralList(wait("", 0)), ephemeralList(term("containerd://e1", 1))},
		{"ephemeral running -> waiting: kept running", pod(withC), ephemeralList(run("containerd://e1", 0)), ephemeralList(wait("", 0)), ephemeralList(run("containerd://e1", 0))},
		{"ephemeral running -> terminated: goes on", pod(withC), ephemeralList(run("containerd://e1", 0)), ephemeralList(term("containerd://e1", 0)), ephemeralList(term("containerd://e1", 0))},
		{"ephemeral restartCount stays 0", pod(withC), ephemeralList(run("containerd://e1", 0)), ephemeralList(run("containerd://e1", 2)), ephemeralList(run("containerd://e1", 0))},
		{"ephemeral not reported yet: as computed", pod(withC), ephemeralList(), ephemeralList(wait("", 0)), ephemeralList(wait("", 0))},
		{"Never, regular terminated -> running: kept terminated", pod(withC, never), regularList(term("containerd://c1", 1)), regularList(run("containerd://c2", 1)), regularList(term("containerd://c1", 1))},
		{"Never, regular running -> waiting: kept running", pod(withC, never), regularList(run("containerd://c1", 0)), regularList(wait("", 0)), regularList(run("containerd://c1", 0))},
		{"Never, restartCount never goes down", pod(withC, never), regularList(run("containerd://c1", 1)), regularList(run("containerd://c1", 0)), regularList(run("containerd://c1", 1))},
		{"Never, init terminated -> waiting: kept terminated", pod(withC, never), initList(term("containerd://i1", 0)), initList(wait("", 0)), initList(term("containerd://i1", 0))},
		{"Never, sidecar terminated -> running: restarts", pod(withC, never, sidecar), initList(term("containerd://i1", 1)), initList(run("containerd://i2", 1)), initList(run("containerd://i2", 1))},
		{"Always, regular terminated -> running: restarts", pod(withC), regularList(term("containerd://c1", 1)), regularList(run("containerd://c2", 1)), regularList(run("containerd://c2", 1))},
		{"Always, regular running -> waiting: goes on", pod(withC), regularList(run("containerd://c1", 0)), regularList(wait("", 0)), regularList(wait("", 0))},
		{"OnFailure, exit 0 -> running: kept terminated", pod(withC, onFailure), regularList(term("containerd://c1", 0)), regularList(run("containerd://c2", 1)), regularList(term("containerd://c1", 0))},
		{"OnFailure, exit 1 -> running: restarts", pod(withC, onFailure), regularList(term("containerd://c1", 1)), regularList(run("containerd://c2", 1)), regularList(run("containerd://c2", 1))},
		{"container Never in a pod Always: terminated -> running kept terminated", pod(withC, ctrPolicy(v1.ContainerRestartPolicyNever)), regularList(term("containerd://c1", 1)), regularList(run("containerd://c2", 1)), regularList(term("containerd://c1", 1))},
		{"container Never in a pod Always: running -> waiting kept running", pod(withC, ctrPolicy(v1.ContainerRestartPolicyNever)), regularList(run("containerd://c1", 0)), regularList(wait("", 0)), regularList(run("containerd://c1", 0))},
		{"container Always in a pod Never: terminated -> running restarts", pod(withC, never, ctrPolicy(v1.ContainerRestartPolicyAlways)), regularList(term("containerd://c1", 0)), regularList(run("containerd://c2", 1)), regularList(run("containerd://c2", 1))},
		{"a rule restarts exit 42 in a pod Never", pod(withC, never, ctrPolicy(v1.ContainerRestartPolicyNever, rule42)), regularList(term("containerd://c1", 42)), regularList(run("containerd://c2", 1)), regularList(run("containerd://c2", 1))},
		{"a rule for exit 42, exit 1 is final", pod(withC, never, ctrPolicy(v1.ContainerRestartPolicyNever, rule42)), regularList(term("containerd://c1", 1)), regularList(run("containerd://c2", 1)), regularList(term("containerd://c1", 1))},
		{"terminal phase stays", pod(withC), v1.PodStatus{Phase: v1.PodFailed}, v1.PodStatus{Phase: v1.PodRunning}, v1.PodStatus{Phase: v1.PodFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.new.DeepCopy()
			NoRegression(&tc.old, got, tc.pod)
			expectEqual(t, "status", tc.out, *got)
		})
	}
}

// Compute applies NoRegression before it derives the phase and the
// conditions, so they agree with the kept states.
func TestComputeNeverGoesBackwards(t *testing.T) {
	f := false
	t.Run("ephemeral reported terminated, runtime shows it running", func(t *testing.T) {
		done := v1.ContainerStatus{Name: "debug", ContainerID: "containerd://e1", Started: &f,
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", ContainerID: "containerd://e1"}}}
		p := pod(ephemeral("debug"), reported(done))
		s := Compute(p, podState(ctr("c1", reg, "app", running, 0, 0, ""), ctr("e1", eph, "debug", running, 0, 0, "")), nil, node, t0)
		expectEqual(t, "ephemeral status", done, s.EphemeralContainerStatuses[0])
	})
	t.Run("Never: regular container reported failed stays failed, and the pod", func(t *testing.T) {
		p := pod(podstatetest.WithPolicy(v1.RestartPolicyNever), func(p *v1.Pod) {
			p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", ContainerID: "containerd://c1", Started: &f,
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", ContainerID: "containerd://c1"}}}}
		})
		// The runtime lost the container: nothing of it is left.
		s := Compute(p, podState(), nil, node, t0)
		expectEqual(t, "container statuses", p.Status.ContainerStatuses, s.ContainerStatuses)
		if s.Phase != v1.PodFailed {
			t.Errorf("phase %s, want Failed", s.Phase)
		}
	})
}

// expectEqual fails the test when got is not want, showing both as JSON.
func expectEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if !apiequality.Semantic.DeepEqual(want, got) {
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// The plan replaces an aborted start in the pod's current sandbox only.
func TestAbortedEphemeralStartInEarlierSandbox(t *testing.T) {
	aborted := podstatetest.Ctr("e1", "sb0", eph, "debug", exited, 0, 128)
	aborted.Reason, aborted.Message = "StartError", "failed to create containerd task: failed to create shim task: context canceled: unknown"
	aborted.StartedAt = time.Time{}
	st := podstatetest.State([]podstate.Sandbox{podstatetest.ReadySandbox("sb1", 1), podstatetest.DeadSandbox("sb0", 0)},
		ctr("c1", reg, "app", running, 0, 0, ""), aborted)
	st.Records = map[string]podstate.Record{"debug": {ContainerID: "e1"}}
	cs := Compute(pod(ephemeral("debug")), st, nil, node, t0).EphemeralContainerStatuses[0]
	if cs.State.Terminated == nil || cs.State.Terminated.Reason != "StartError" {
		t.Errorf("status %+v, want Terminated StartError", cs)
	}
}

// A debug command the image cannot run: the start fails in this very sync
// (RunContainerError), and the container already shows how it ended.
func TestEphemeralStartRefusedShowsItsEnd(t *testing.T) {
	refused := ctr("e1", eph, "debug", exited, 0, 128, "StartError")
	refused.StartedAt = time.Time{}
	refused.Message = `failed to create containerd task: exec: "sh": executable file not found in $PATH: unknown`
	w := map[podstate.ContainerKey]podstate.Waiting{{Type: eph, Name: "debug"}: {Reason: "RunContainerError", Message: refused.Message}}
	s := Compute(pod(ephemeral("debug")), podState(ctr("c1", reg, "app", running, 0, 0, ""), refused), w, node, t0)
	got := s.EphemeralContainerStatuses[0].State
	if got.Terminated == nil || got.Terminated.Reason != "StartError" || got.Terminated.ExitCode != 128 || got.Terminated.Message != refused.Message {
		t.Errorf("state = %+v, want Terminated StartError 128 with the runtime's message", got)
	}
}
