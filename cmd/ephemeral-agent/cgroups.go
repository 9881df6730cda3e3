package main

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/cm"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/node"
)

// newPodCgroups sets up the pod cgroup hierarchy (kubepods and the QoS
// tiers) with the driver the runtime tells, else the flag's. It returns
// nil without --cgroups-per-qos: sandboxes then get no cgroup parent.
func newPodCgroups(ctx context.Context, o *options, runtime cm.RuntimeConfigGetter, machine node.MachineInfo, pods func() []*v1.Pod) (*cm.Manager, error) {
	if !o.cgroupsPerQOS {
		return nil, nil
	}
	flagDriver, err := cm.ParseDriver(o.cgroupDriver)
	if err != nil {
		return nil, err
	}
	driver, err := cm.ResolveDriver(ctx, runtime, flagDriver, o.cgroupDriverExplicit)
	if err != nil {
		return nil, fmt.Errorf("ask the container runtime for its cgroup driver: %w", err)
	}
	m, err := cm.New(cm.Config{
		Root:         o.cgroupRoot,
		Driver:       driver,
		PodPidsLimit: o.podMaxPids,
		Capacity:     machine.Capacity,
		QOS:          criconfig.PodQOS,
		Pods:         pods,
	})
	if err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		return nil, fmt.Errorf("create the pod cgroup hierarchy: %w", err)
	}
	return m, nil
}

// podCgroups is the sync loop's view of the cgroup manager: nil, not a
// nil pointer, when there is none.
func (pm *podMachinery) podCgroups() kuberuntime.PodCgroups {
	if pm.cgroups == nil {
		return nil
	}
	return pm.cgroups
}
