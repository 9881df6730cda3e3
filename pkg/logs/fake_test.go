package logs

import (
	"context"
	"fmt"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// fakeRuntime answers ContainerStatus from a table the test can change
// while a follow is in flight.
type fakeRuntime struct {
	mu         sync.Mutex
	containers map[string]*runtimeapi.ContainerStatus
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{}}
}

func (f *fakeRuntime) set(id string, state runtimeapi.ContainerState, logPath string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = &runtimeapi.ContainerStatus{Id: id, State: state, LogPath: logPath}
}

func (f *fakeRuntime) setState(id string, state runtimeapi.ContainerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id].State = state
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q not found", id)
	}
	// A fresh message, so a later set does not race with the reader.
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: c.Id, State: c.State, LogPath: c.LogPath}}, nil
}

// fakeResolver knows one pod, web in ns, with containers whose current and
// previous targets are given; a container mapped to an error returns it.
type fakeResolver struct {
	current  map[string]LogTarget
	previous map[string]LogTarget
	errs     map[string]error
}

func (f *fakeResolver) ContainerLogTarget(_ context.Context, namespace, podName, containerName string, previous bool) (LogTarget, error) {
	if namespace != "ns" || podName != "web" {
		return LogTarget{}, podstate.ErrPodNotFound
	}
	if err, ok := f.errs[containerName]; ok {
		return LogTarget{}, err
	}
	targets := f.current
	if previous {
		targets = f.previous
	}
	if t, ok := targets[containerName]; ok {
		return t, nil
	}
	if previous {
		if _, ok := f.current[containerName]; ok {
			return LogTarget{}, ErrPreviousNotFound
		}
	}
	return LogTarget{}, podstate.ErrContainerNotFound
}
