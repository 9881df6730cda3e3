package podstate_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

func TestEphemeralCreated(t *testing.T) {
	sb := []podstate.Sandbox{podstatetest.ReadySandbox("sb1", 0)}
	dbg := podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Exited, 0, 0)
	reported := func(cs v1.ContainerStatus) func(*v1.Pod) {
		return func(p *v1.Pod) {
			cs.Name = "debug"
			p.Status.EphemeralContainerStatuses = []v1.ContainerStatus{cs}
		}
	}
	records := func(r podstate.Record) *podstate.PodState {
		s := podstatetest.State(sb)
		s.Records = map[string]podstate.Record{"debug": r}
		return s
	}
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		want  bool
	}{
		{"nothing", podstatetest.Pod(), podstatetest.State(sb), false},
		{"a runtime container", podstatetest.Pod(), podstatetest.State(sb, dbg), true},
		{"a record", podstatetest.Pod(), records(podstate.Record{ContainerID: "e1"}), true},
		{"a record of a replacement under way", podstatetest.Pod(reported(v1.ContainerStatus{ContainerID: "containerd://e1"})), records(podstate.Record{Replacements: 1}), false},
		{"reported with a container ID", podstatetest.Pod(reported(v1.ContainerStatus{ContainerID: "containerd://e1"})), podstatetest.State(sb), true},
		{"reported terminated", podstatetest.Pod(reported(v1.ContainerStatus{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}})), podstatetest.State(sb), true},
		{"reported running", podstatetest.Pod(reported(v1.ContainerStatus{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}})), podstatetest.State(sb), true},
		{"reported waiting, no container", podstatetest.Pod(reported(v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}})), podstatetest.State(sb), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podstate.EphemeralCreated(tc.pod, tc.state, "debug"); got != tc.want {
				t.Errorf("EphemeralCreated = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAbortedStart(t *testing.T) {
	never := func(msg string) *podstate.Container {
		c := podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Exited, 0, 128)
		c.StartedAt, c.Reason, c.Message = time.Time{}, "StartError", msg
		return &c
	}
	ran := podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Exited, 0, 1)
	ran.Message = "context canceled"
	running := podstatetest.Ctr("e1", "sb1", podstatetest.Ephemeral, "debug", podstatetest.Running, 0, 0)
	for _, tc := range []struct {
		name string
		c    *podstate.Container
		want bool
	}{
		{"task creation cancelled with the agent", never("failed to create containerd task: failed to create shim task: context canceled: unknown"), true},
		{"shim killed with the agent", never("failed to create containerd task: failed to start shim: start failed: signal: killed: unknown"), true},
		{"after a runtime restart, the interrupted start's task", never("failed to create containerd task: task 99644da03521: already exists: unknown"), true},
		{"after a runtime restart, the interrupted start's shim", never("failed to create containerd task: failed to start shim: mkdir /run/containerd/io.containerd.runtime.v2.task/k8s.io/761d482e: file exists: unknown"), true},
		{"start cancelled once the task existed: it may have run", never(`failed to start containerd task "e1": context canceled: unknown`), false},
		{"start refused: no such executable", never(`failed to create containerd task: exec: "sh": executable file not found in $PATH: unknown`), false},
		{"it ran: its own exit", &ran, false},
		{"running", &running, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podstate.AbortedStart(tc.c); got != tc.want {
				t.Errorf("AbortedStart = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRecordStore(t *testing.T) {
	dir := t.TempDir()
	s := podstate.NewRecordStore(dir)
	if got, err := s.List("uid-1"); err != nil || len(got) != 0 {
		t.Fatalf("List of a pod without records = %v, %v", got, err)
	}
	if err := s.Put("uid-1", "debug", podstate.Record{ContainerID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("uid-1", "debug", podstate.Record{ContainerID: "e2", Replacements: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("uid-1", "other", podstate.Record{ContainerID: "o1", LostReported: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List("uid-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]podstate.Record{"debug": {ContainerID: "e2", Replacements: 1}, "other": {ContainerID: "o1", LostReported: true}}
	if len(got) != len(want) || got["debug"] != want["debug"] || got["other"] != want["other"] {
		t.Errorf("List = %+v, want %+v", got, want)
	}
	// No temporary file is left beside the records.
	entries, _ := os.ReadDir(filepath.Join(dir, "uid-1", "ephemeral-containers"))
	if len(entries) != 2 {
		t.Errorf("record directory holds %d entries, want 2", len(entries))
	}
	// A damaged record still witnesses that the container was created.
	if err := os.WriteFile(filepath.Join(dir, "uid-1", "ephemeral-containers", "other"), []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := s.List("uid-1"); err != nil {
		t.Fatal(err)
	} else if !podstate.EphemeralCreated(podstatetest.Pod(), &podstate.PodState{Records: got}, "other") {
		t.Errorf("a damaged record (%+v) is no witness", got["other"])
	}
}
