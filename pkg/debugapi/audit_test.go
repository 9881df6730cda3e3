package debugapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var (
	created = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	firstAt = created.Add(time.Hour)
	laterAt = created.Add(2 * time.Hour)
)

// What kube-apiserver records for a pod created with `kubectl run`, its
// status written by the node, and `kubectl debug -it --target=app` adding
// debugger-abcde through the ephemeralcontainers subresource.
var (
	createdByKubectlRun = metav1.ManagedFieldsEntry{
		Manager: "kubectl-run", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: created}, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{".":{},"f:run":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}`),
	}
	statusByNode = metav1.ManagedFieldsEntry{
		Manager: "ephemeral-agent", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: laterAt.Add(time.Minute)}, FieldsType: "FieldsV1", Subresource: "status",
		FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:conditions":{},"f:ephemeralContainerStatuses":{},"f:phase":{},"f:podIP":{},"f:startTime":{}}}`),
	}
	kubectlDebug = metav1.ManagedFieldsEntry{
		Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: firstAt}, FieldsType: "FieldsV1", Subresource: "ephemeralcontainers",
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:ephemeralContainers":{".":{},"k:{\"name\":\"debugger-abcde\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:stdin":{},"f:targetContainerName":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:tty":{}}}}}`),
	}
	// A tool of its own, adding debugger-bot later with server-side apply.
	botApply = metav1.ManagedFieldsEntry{
		Manager: "debug-bot", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
		Time: &metav1.Time{Time: laterAt}, FieldsType: "FieldsV1", Subresource: "ephemeralcontainers",
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:ephemeralContainers":{"k:{\"name\":\"debugger-bot\"}":{".":{},"f:command":{},"f:image":{},"f:name":{}}}}}`),
	}
	// The same tool applying a configuration that names debugger-abcde too
	// (with the key's JSON spaced differently): it co-owns it, later.
	botCoOwns = metav1.ManagedFieldsEntry{
		Manager: "debug-bot", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
		Time: &metav1.Time{Time: laterAt}, FieldsType: "FieldsV1", Subresource: "ephemeralcontainers",
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:ephemeralContainers":{"k:{ \"name\" : \"debugger-abcde\" }":{"f:image":{}}}}}`),
	}
	broken = metav1.ManagedFieldsEntry{
		Manager: "broken", Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: laterAt.Add(time.Hour)},
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:ephemeralContainers":{"k:{\"name\":`),
	}
)

func TestFieldManager(t *testing.T) {
	tests := []struct {
		name      string
		entries   []metav1.ManagedFieldsEntry
		container string
		manager   string
		at        time.Time
		ok        bool
	}{
		{name: "kubectl debug", entries: []metav1.ManagedFieldsEntry{createdByKubectlRun, kubectlDebug, statusByNode},
			container: "debugger-abcde", manager: "kubectl", at: firstAt, ok: true},
		{name: "two containers by two managers, the first", entries: []metav1.ManagedFieldsEntry{createdByKubectlRun, kubectlDebug, botApply, statusByNode},
			container: "debugger-abcde", manager: "kubectl", at: firstAt, ok: true},
		{name: "two containers by two managers, the second", entries: []metav1.ManagedFieldsEntry{createdByKubectlRun, kubectlDebug, botApply, statusByNode},
			container: "debugger-bot", manager: "debug-bot", at: laterAt, ok: true},
		{name: "co-owned: the newest entry", entries: []metav1.ManagedFieldsEntry{botCoOwns, kubectlDebug},
			container: "debugger-abcde", manager: "debug-bot", at: laterAt, ok: true},
		{name: "a regular container of that name is not it", entries: []metav1.ManagedFieldsEntry{createdByKubectlRun},
			container: "app"},
		{name: "no ephemeral containers", entries: []metav1.ManagedFieldsEntry{createdByKubectlRun, statusByNode},
			container: "debugger-abcde"},
		{name: "another name", entries: []metav1.ManagedFieldsEntry{kubectlDebug}, container: "debugger"},
		{name: "no managedFields", container: "debugger-abcde"},
		{name: "a broken entry owns nothing", entries: []metav1.ManagedFieldsEntry{kubectlDebug, broken},
			container: "debugger-abcde", manager: "kubectl", at: firstAt, ok: true},
		{name: "an entry without time", entries: []metav1.ManagedFieldsEntry{{Manager: "m", FieldsV1: kubectlDebug.FieldsV1}},
			container: "debugger-abcde", manager: "m", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: tt.entries}}
			manager, at, ok := FieldManager(pod, tt.container)
			if manager != tt.manager || !at.Equal(tt.at) || ok != tt.ok {
				t.Errorf("FieldManager = %q, %v, %v; want %q, %v, %v", manager, at, ok, tt.manager, tt.at, tt.ok)
			}
		})
	}
}

func TestNewContainerAudit(t *testing.T) {
	now := laterAt.Add(time.Second)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-1",
			ManagedFields: []metav1.ManagedFieldsEntry{createdByKubectlRun, kubectlDebug, statusByNode}},
		Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}},
	}
	tests := []struct {
		name string
		ec   v1.EphemeralContainer
		want *ContainerAudit
	}{
		{
			name: "kubectl debug --target, the pod's user",
			ec: v1.EphemeralContainer{TargetContainerName: "app", EphemeralContainerCommon: v1.EphemeralContainerCommon{
				Name: "debugger-abcde", Image: "busybox:1.37", Stdin: true, TTY: true}},
			want: &ContainerAudit{Kind: KindContainer, Time: now, Namespace: "shop", Pod: "web", PodUID: "uid-1",
				Container: "debugger-abcde", Image: "busybox:1.37", Target: "app", RunAsUser: ptr.To[int64](1000),
				FieldManager: "kubectl", ManagedTime: &firstAt},
		},
		{
			name: "privileged, capabilities, its own user, no manager",
			ec: v1.EphemeralContainer{EphemeralContainerCommon: v1.EphemeralContainerCommon{
				Name: "root-shell", Image: "registry.example/tools@sha256:0123", Command: []string{"sh"}, Args: []string{"-c", "id"},
				SecurityContext: &v1.SecurityContext{Privileged: ptr.To(true), RunAsUser: ptr.To[int64](0),
					Capabilities: &v1.Capabilities{Add: []v1.Capability{"SYS_PTRACE", "NET_ADMIN"}}}}},
			want: &ContainerAudit{Kind: KindContainer, Time: now, Namespace: "shop", Pod: "web", PodUID: "uid-1",
				Container: "root-shell", Image: "registry.example/tools@sha256:0123", Command: []string{"sh"}, Args: []string{"-c", "id"},
				Privileged: true, AddedCapabilities: []string{"SYS_PTRACE", "NET_ADMIN"}, RunAsUser: ptr.To[int64](0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewContainerAudit(pod, &tt.ec, now)
			if !reflect.DeepEqual(got, tt.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tt.want)
				t.Errorf("NewContainerAudit:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// TestContainerAuditJSON fixes the line's format: tools parse it.
func TestContainerAuditJSON(t *testing.T) {
	a := NewContainerAudit(&v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-1", ManagedFields: []metav1.ManagedFieldsEntry{kubectlDebug}},
	}, &v1.EphemeralContainer{TargetContainerName: "app", EphemeralContainerCommon: v1.EphemeralContainerCommon{
		Name: "debugger-abcde", Image: "busybox:1.37"}}, laterAt)
	a.Decision, a.Rule, a.ContainerID = DecisionAllowed, "default", "c0ffee"
	a.Resources, a.MaxDuration, a.IdleTimeout = "cpu=500m,memory=128Mi,pids=256", "1h0m0s", "15m0s"
	line, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"container","time":"2026-12-05T11:00:00Z","namespace":"shop","pod":"web","podUID":"uid-1",` +
		`"container":"debugger-abcde","containerID":"c0ffee","image":"busybox:1.37","target":"app",` +
		`"fieldManager":"kubectl","managedTime":"2026-12-05T10:00:00Z","decision":"allowed","rule":"default",` +
		`"resources":"cpu=500m,memory=128Mi,pids=256","maxDuration":"1h0m0s","idleTimeout":"15m0s"}`
	if string(line) != want {
		t.Errorf("line:\n got %s\nwant %s", line, want)
	}
}
