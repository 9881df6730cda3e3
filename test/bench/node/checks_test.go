package node

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podWith(phase v1.PodPhase, app v1.ContainerState, debug ...v1.ContainerStatus) *v1.Pod {
	p := benchPod("ns", "p000", "node", "img", "r")
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", State: app}}
	p.Status.EphemeralContainerStatuses = debug
	return p
}

var (
	runningState = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.Now()}}
	waitingState = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "no image"}}
)

func exited(code int32, reason string) v1.ContainerState {
	return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code, Reason: reason}}
}

func TestPodRunning(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		want    bool
		wantErr bool
	}{
		{"pending", podWith(v1.PodPending, waitingState), false, false},
		{"running", podWith(v1.PodRunning, runningState), true, false},
		{"running phase, app not yet", podWith(v1.PodRunning, waitingState), false, false},
		{"no statuses yet", func() *v1.Pod { p := podWith(v1.PodRunning, runningState); p.Status.ContainerStatuses = nil; return p }(), false, false},
		{"failed", podWith(v1.PodFailed, exited(1, "Error")), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podRunning(tc.pod)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("podRunning = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDebugReached(t *testing.T) {
	dbg := func(s v1.ContainerState) v1.ContainerStatus { return v1.ContainerStatus{Name: "d", State: s} }
	other := v1.ContainerStatus{Name: "other", State: runningState}
	for _, tc := range []struct {
		name    string
		want    state
		pod     *v1.Pod
		done    bool
		wantErr string
	}{
		{"no status yet", running, podWith(v1.PodRunning, runningState, other), false, ""},
		{"waiting", running, podWith(v1.PodRunning, runningState, dbg(waitingState)), false, ""},
		{"running", running, podWith(v1.PodRunning, runningState, dbg(runningState)), true, ""},
		{"exited while Running awaited", running, podWith(v1.PodRunning, runningState, dbg(exited(0, "Completed"))), false, "instead of running"},
		{"running while Terminated awaited", terminated, podWith(v1.PodRunning, runningState, dbg(runningState)), false, ""},
		{"terminated", terminated, podWith(v1.PodRunning, runningState, dbg(exited(0, "Completed"))), true, ""},
		{"start error", terminated, podWith(v1.PodRunning, runningState, dbg(exited(128, "StartError"))), false, "code 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := debugReached("d", tc.want)(tc.pod)
			if done != tc.done {
				t.Errorf("done = %v, want %v", done, tc.done)
			}
			if (err != nil) != (tc.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	p := podWith(v1.PodRunning, runningState, v1.ContainerStatus{Name: "d", State: waitingState})
	for _, tc := range []struct {
		pod       *v1.Pod
		container string
		want      string
	}{
		{nil, "d", "not in the watch cache"},
		{p, "d", "debug container d waiting (ErrImageNeverPull: no image)"},
		{p, "x", "no status for debug container x"},
		{p, "", `phase "Running", container app running`},
	} {
		if got := describe(tc.pod, tc.container); !strings.Contains(got, tc.want) {
			t.Errorf("describe(%q) = %q, want it to contain %q", tc.container, got, tc.want)
		}
	}
}

func TestScaledCounts(t *testing.T) {
	full := ScaledCounts(1)
	if full != (Counts{Sequential: 40, Concurrent: 100, InFlight: 20, Idle: 108, FewPods: 10, ManyPods: 250, PodCountRequests: 40}) {
		t.Errorf("ScaledCounts(1) = %+v, want issue 13's table", full)
	}
	for _, s := range []float64{0, 0.01, 0.1, 0.25, 0.5, 2} {
		c := ScaledCounts(s)
		if c.InFlight > c.Concurrent || c.Idle < c.Concurrent || c.ManyPods < c.Idle+c.FewPods || c.FewPods < 2 {
			t.Errorf("ScaledCounts(%v) = %+v is inconsistent", s, c)
		}
	}
}

func TestIdleFigures(t *testing.T) {
	got := idleFigures(108, []float64{30, 40, 50}, []float64{10, 12}, 3, 60*time.Second)
	if got.RSSMB != 40 || got.RSSMaxMB != 50 || got.RSSAnonMB != 11 || got.CPUPercent != 5 || got.WindowS != 60 || got.Pods != 108 {
		t.Errorf("idleFigures = %+v, want rss 40 (max 50), anon 11, 5 %% CPU over 60 s", got)
	}
	if z := idleFigures(1, nil, nil, 0, 0); z.RSSMB != 0 || z.RSSAnonMB != 0 || z.CPUPercent != 0 {
		t.Errorf("idleFigures without samples = %+v, want zeros", z)
	}
}

func TestDebugContainer(t *testing.T) {
	if c := debugContainer("d", "img", terminated); strings.Join(c.Command, " ") != "true" || c.ImagePullPolicy != v1.PullNever {
		t.Errorf("terminated debug container = %+v, want `true`, pull never", c)
	}
	if c := debugContainer("d", "img", running); strings.Join(c.Command, " ") != "sleep 3600" {
		t.Errorf("running debug container command = %v, want sleep 3600", c.Command)
	}
}

func TestCheckCapacity(t *testing.T) {
	node := func(pods string) *v1.Node {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
		if pods != "" {
			n.Status.Allocatable = v1.ResourceList{v1.ResourcePods: resource.MustParse(pods)}
		}
		return n
	}
	for _, tc := range []struct {
		pods         string
		others, want int
		wantErr      bool
	}{
		{"110", 0, 110, false},
		{"110", 1, 110, true},
		{"300", 2, 250, false},
		{"", 5, 250, false},
	} {
		if err := checkCapacity(node(tc.pods), tc.others, tc.want); (err != nil) != tc.wantErr {
			t.Errorf("checkCapacity(%s pods, %d others, %d wanted) = %v, want error %v", tc.pods, tc.others, tc.want, err, tc.wantErr)
		}
	}
}
