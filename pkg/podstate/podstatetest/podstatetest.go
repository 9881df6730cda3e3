// Package podstatetest builds pods and observed pod states for the table
// tests of the packages that read them (the plan, the status), and the
// fakes a podstate.Lookup reads (a pod cache, a CRI runtime holding a
// pod's sandboxes and containers) for the packages that look pods up (the
// observer, logs, streaming). It is for tests only.
package podstatetest

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// T0 is the tests' "now"; fixtures are dated from it.
var T0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// Short names for the container types and states tables use most.
const (
	Init      = criconfig.ContainerTypeInit
	Regular   = criconfig.ContainerTypeRegular
	Ephemeral = criconfig.ContainerTypeEphemeral

	Running = runtimeapi.ContainerState_CONTAINER_RUNNING
	Exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	Created = runtimeapi.ContainerState_CONTAINER_CREATED
	Unknown = runtimeapi.ContainerState_CONTAINER_UNKNOWN
)

// Pods is the agent's pod cache as a podstate.Lookup reads it: pods keyed
// "namespace/name".
type Pods map[string]*v1.Pod

var _ podstate.PodGetter = Pods(nil)

// NewPods returns a cache of those pods.
func NewPods(pods ...*v1.Pod) Pods {
	c := make(Pods, len(pods))
	for _, p := range pods {
		c[p.Namespace+"/"+p.Name] = p
	}
	return c
}

// GetPod returns the cached pod namespace/name.
func (c Pods) GetPod(namespace, name string) (*v1.Pod, bool) {
	p, ok := c[namespace+"/"+name]
	return p, ok
}

// Pod returns pod default/app (UID uid-1, restart policy Always) with one
// regular container "app" of a distroless image, changed by mutate.
func Pod(mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "app", Image: "localhost/distroless-app:test"}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// WithInit appends init containers of those names.
func WithInit(names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "localhost/busybox:test"})
		}
	}
}

// WithSidecar appends a restartable init container (a sidecar).
func WithSidecar(name string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		always := v1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: name, Image: "localhost/busybox:test", RestartPolicy: &always})
	}
}

// WithEphemeral appends ephemeral containers of those names, each
// targeting the container target ("" for none).
func WithEphemeral(target string, names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
				EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: n, Image: "localhost/busybox:test"},
				TargetContainerName:      target,
			})
		}
	}
}

// WithPolicy sets the pod's restart policy.
func WithPolicy(policy v1.RestartPolicy) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.RestartPolicy = policy }
}

// ReadySandbox is a ready sandbox created attempt minutes after T0, with
// one pod address.
func ReadySandbox(id string, attempt uint32) podstate.Sandbox {
	return podstate.Sandbox{ID: id, Attempt: attempt, Ready: true, CreatedAt: T0.Add(time.Duration(attempt) * time.Minute), IPs: []string{"10.88.2.5"}}
}

// DeadSandbox is ReadySandbox, stopped.
func DeadSandbox(id string, attempt uint32) podstate.Sandbox {
	s := ReadySandbox(id, attempt)
	s.Ready = false
	return s
}

// Ctr is a container of sandbox sb created attempt seconds after T0 (so a
// higher attempt is newer), started then unless only created, and finished
// a second later if exited.
func Ctr(id, sb string, typ criconfig.ContainerType, name string, st runtimeapi.ContainerState, attempt int, exit int32) podstate.Container {
	c := podstate.Container{ID: id, SandboxID: sb, Type: typ, Name: name, State: st, Attempt: attempt, ExitCode: exit,
		ImageRef: "sha256:abc", CreatedAt: T0.Add(time.Duration(attempt) * time.Second)}
	if st != Created {
		c.StartedAt = c.CreatedAt
	}
	if st == Exited {
		c.FinishedAt = c.StartedAt.Add(time.Second)
	}
	return c
}

// State is a pod state of those sandboxes and containers, sorted as an
// Observer sorts it.
func State(sandboxes []podstate.Sandbox, containers ...podstate.Container) *podstate.PodState {
	s := &podstate.PodState{Sandboxes: sandboxes, Containers: containers}
	s.Sort()
	return s
}
