package podstatetest

import (
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// DefaultLogDir is the directory of a container's log when CRI.LogDir is
// empty.
const DefaultLogDir = "/var/log/pods"

// CRI fills a fake CRI runtime with one pod's sandboxes and containers,
// labelled and annotated by criconfig as the sync loop creates them, so
// that a podstate.Observer reads them as it reads a real runtime's.
//
// Several CRIs may share one Runtime, one per pod. Sandbox and Container
// hold the runtime's lock while they add; a test that changes a returned
// record while the runtime is read must hold it too.
type CRI struct {
	Runtime *criapitesting.FakeRuntimeService
	Pod     *v1.Pod
	// LogDir is where the containers' logs are: a container's LogPath is
	// LogDir/<id>.log. Empty for DefaultLogDir.
	LogDir string
}

// Sandbox adds a sandbox of the pod, of that attempt, created at the given
// time, ready or not; ips are its network's addresses, primary first (none
// for no network status, as of a host-network pod). It returns the fake's
// record for the test to change.
func (f CRI) Sandbox(id string, attempt uint32, ready bool, created time.Time, ips ...string) *criapitesting.FakePodSandbox {
	state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		state = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	s := &criapitesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id:        id,
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: f.Pod.Name, Namespace: f.Pod.Namespace, Uid: string(f.Pod.UID), Attempt: attempt},
		State:     state,
		CreatedAt: created.UnixNano(),
		Labels:    criconfig.SandboxLabels(f.Pod),
	}}
	if len(ips) > 0 {
		s.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			s.Network.AdditionalIps = append(s.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	f.Runtime.Lock()
	defer f.Runtime.Unlock()
	f.Runtime.Sandboxes[id] = s
	return s
}

// Container adds an instance of the pod's container name of type typ (or,
// if the pod's spec has no such container, of an unknown image) to sandbox
// sandboxID: of that attempt, in state st, created at the given time,
// started then unless only created, and finished a second later with exit
// code exit if exited. Its image is the spec's, pulled as sha256:0123, and
// its log is LogDir/<id>.log. It returns the fake's record for the test to
// change.
func (f CRI) Container(id, sandboxID string, typ criconfig.ContainerType, name string, st runtimeapi.ContainerState, attempt int, created time.Time, exit int32) *criapitesting.FakeContainer {
	spec := podstate.ContainerSpec(f.Pod, typ, name)
	if spec == nil {
		spec = &v1.Container{Name: name, Image: "localhost/unknown:test"}
	}
	logDir := f.LogDir
	if logDir == "" {
		logDir = DefaultLogDir
	}
	c := &criapitesting.FakeContainer{SandboxID: sandboxID, ContainerStatus: runtimeapi.ContainerStatus{
		Id:          id,
		Metadata:    &runtimeapi.ContainerMetadata{Name: name, Attempt: uint32(attempt)},
		State:       st,
		CreatedAt:   created.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: "sha256:0123", UserSpecifiedImage: spec.Image},
		ImageRef:    "sha256:0123",
		ExitCode:    exit,
		LogPath:     logDir + "/" + id + ".log",
		Labels:      criconfig.ContainerLabels(f.Pod, name),
		Annotations: criconfig.ContainerAnnotations(f.Pod, spec, typ, attempt),
	}}
	if st != Created {
		c.StartedAt = created.UnixNano()
	}
	if st == Exited {
		c.FinishedAt = created.Add(time.Second).UnixNano()
	}
	f.Runtime.Lock()
	defer f.Runtime.Unlock()
	f.Runtime.Containers[id] = c
	return c
}
