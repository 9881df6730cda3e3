package main

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func debugPod(ns, name, node string, ecs []v1.EphemeralContainer, statuses ...v1.ContainerStatus) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"},
		Spec: v1.PodSpec{
			NodeName:            node,
			Containers:          []v1.Container{{Name: "app", Image: "app:1"}},
			EphemeralContainers: ecs,
		},
		Status: v1.PodStatus{EphemeralContainerStatuses: statuses},
	}
}

func ec(name, image, target string) v1.EphemeralContainer {
	return v1.EphemeralContainer{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: name, Image: image}, TargetContainerName: target}
}

func running(name string, since time.Duration) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: ago(since)}}}
}

func terminated(name, reason string, since time.Duration) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: reason, StartedAt: ago(since), FinishedAt: ago(time.Second)}}}
}

func waiting(name, reason string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}}}
}

func withStop(p *v1.Pod, value string) *v1.Pod {
	p.Annotations = map[string]string{debugapi.StopAnnotation: value}
	return p
}

func TestPodRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want []row
	}{
		{"no debug containers", debugPod("ns", "web", "n1", nil), []row{}},
		{
			"each state, and no status yet",
			debugPod("ns", "web", "n1",
				[]v1.EphemeralContainer{ec("run", "busybox", "app"), ec("done", "busybox", ""), ec("wait", "nope:1", ""), ec("new", "busybox", "app")},
				running("run", 3*time.Minute), terminated("done", "Completed", 2*time.Hour), waiting("wait", "ErrImageNeverPull")),
			[]row{
				{"ns", "web", "run", "busybox", "app", "Running", "-", "3m"},
				{"ns", "web", "done", "busybox", "-", "Terminated", "Completed", "120m"},
				{"ns", "web", "wait", "nope:1", "-", "Waiting", "ErrImageNeverPull", "-"},
				{"ns", "web", "new", "busybox", "app", "-", "-", "-"},
			},
		},
		{
			// A terminated container's stop request is done: not marked.
			"stop requested",
			withStop(debugPod("ns", "web", "n1",
				[]v1.EphemeralContainer{ec("a", "busybox", ""), ec("b", "busybox", ""), ec("c", "busybox", ""), ec("d", "busybox", "")},
				running("a", time.Minute), terminated("b", debugapi.ReasonStopRequested, time.Minute), running("d", time.Minute)),
				"a, b,c"),
			[]row{
				{"ns", "web", "a", "busybox", "-", "Running (stop requested)", "-", "60s"},
				{"ns", "web", "b", "busybox", "-", "Terminated", debugapi.ReasonStopRequested, "60s"},
				{"ns", "web", "c", "busybox", "-", "- (stop requested)", "-", "-"},
				{"ns", "web", "d", "busybox", "-", "Running", "-", "60s"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := []row{}
			for _, d := range podDebugContainers(tc.pod) {
				got = append(got, d.row(now))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestListDebugContainers(t *testing.T) {
	c := fake.NewClientset(
		debugPod("b", "web", "n1", []v1.EphemeralContainer{ec("dbg", "busybox", "app")}, running("dbg", time.Minute)),
		debugPod("a", "z", "n2", []v1.EphemeralContainer{ec("dbg", "busybox", "")}),
		debugPod("a", "y", "n1", []v1.EphemeralContainer{ec("dbg", "busybox", "")}),
		debugPod("a", "plain", "n1", nil),
	)
	for _, tc := range []struct {
		name string
		q    listQuery
		want []string // namespace/pod of each row
	}{
		{"one namespace", listQuery{namespace: "a"}, []string{"a/y", "a/z"}},
		{"all namespaces", listQuery{}, []string{"a/y", "a/z", "b/web"}},
		{"a node", listQuery{node: "n1"}, []string{"a/y", "b/web"}},
		{"a node and a namespace", listQuery{namespace: "b", node: "n1"}, []string{"b/web"}},
		{"nothing", listQuery{namespace: "c"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dcs, err := listDebugContainers(context.Background(), c, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if tc.q.node != "" {
				if fs := c.Actions()[len(c.Actions())-1].(k8stesting.ListAction).GetListRestrictions().Fields.String(); fs != "spec.nodeName="+tc.q.node {
					t.Errorf("field selector %q", fs)
				}
			}
			var got []string
			for _, d := range dcs {
				got = append(got, d.Namespace+"/"+d.Pod)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows of %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	started := ago(3 * time.Minute)
	dcs := []debugContainer{{Namespace: "ns", Pod: "web", Name: "debugger", Image: "busybox", Target: "app", State: "Running", StartedAt: &started}}
	for _, tc := range []struct {
		withNamespace bool
		want          string
	}{
		{false, "POD   NAME       IMAGE     TARGET   STATE     REASON   AGE\n" +
			"web   debugger   busybox   app      Running   -        3m\n"},
		{true, "NAMESPACE   POD   NAME       IMAGE     TARGET   STATE     REASON   AGE\n" +
			"ns          web   debugger   busybox   app      Running   -        3m\n"},
	} {
		var b bytes.Buffer
		if err := printTable(&b, dcs, tc.withNamespace, now); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("withNamespace %v:\n%s\nwant\n%s", tc.withNamespace, b.String(), tc.want)
		}
	}
}

func TestNothingFound(t *testing.T) {
	for q, want := range map[listQuery]string{
		{namespace: "demo"}:             "No debug containers found in demo namespace.",
		{}:                              "No debug containers found in any namespace.",
		{node: "n1"}:                    "No debug containers found in any namespace on node n1.",
		{namespace: "demo", node: "n1"}: "No debug containers found in demo namespace on node n1.",
	} {
		if got := q.nothingFound(); got != want {
			t.Errorf("%+v: %q, want %q", q, got, want)
		}
	}
}

func TestPrintList(t *testing.T) {
	pod := withStop(debugPod("ns", "web", "n1", []v1.EphemeralContainer{ec("a", "busybox", "app"), ec("b", "busybox", "")},
		terminated("a", "Completed", time.Minute)), "b")
	for _, tc := range []struct {
		format string
		dcs    []debugContainer
		want   string
	}{
		{"json", nil, "{\n    \"items\": []\n}\n"},
		{"yaml", podDebugContainers(pod), `items:
- exitCode: 0
  image: busybox
  name: a
  namespace: ns
  pod: web
  reason: Completed
  startedAt: "2026-12-05T11:59:00Z"
  state: Terminated
  target: app
- image: busybox
  name: b
  namespace: ns
  pod: web
  stopRequested: true
`},
	} {
		var b bytes.Buffer
		if err := printList(&b, tc.format, tc.dcs); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.format, b.String(), tc.want)
		}
	}
}
