package main

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/images"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podsource"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/status"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/volume"
)

// podMachinery is everything that runs pods: the pod informer, the per-pod
// workers and sync loop, the status sender and the event broadcaster.
type podMachinery struct {
	source      *podsource.Source
	workers     *kuberuntime.Workers
	syncer      *kuberuntime.Syncer
	status      *status.Manager
	broadcaster record.EventBroadcaster
}

func newPodMachinery(ctx context.Context, o *options, client kubernetes.Interface, runtime internalapi.RuntimeService) (*podMachinery, error) {
	imageService, err := remote.NewRemoteImageServiceBuilder().
		WithEndpoint(o.containerRuntimeEndpoint).
		WithConnectionTimeout(o.runtimeRequestTimeout).
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to image service: %w", err)
	}
	runtimeName := "containerd"
	if v, err := runtime.Version(ctx, ""); err == nil && v.GetRuntimeName() != "" {
		runtimeName = v.GetRuntimeName()
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	// Events carry the kubelet's source, as the tools that read them expect.
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: o.nodeName})
	api := apiObjects{client}
	clk := clock.RealClock{}

	pm := &podMachinery{broadcaster: broadcaster}
	pm.source, err = podsource.New(client, o.nodeName, func(uid types.UID) { pm.workers.Enqueue(uid) })
	if err != nil {
		return nil, err
	}
	pm.status = status.NewManager(client, pm.source, status.NodeInfo{HostIPs: []string{o.nodeIP}, RuntimeName: runtimeName}, clk)
	pm.syncer = kuberuntime.NewSyncer(kuberuntime.Config{
		PodLogsDir:   o.podLogsDir,
		RootDir:      o.rootDir,
		NodeName:     o.nodeName,
		NodeHostname: o.hostnameOverride,
		NodeIPs:      []string{o.nodeIP},
		DNS:          criconfig.DNSOptions{ClusterDNS: o.clusterDNS, ClusterDomain: o.clusterDomain, ResolvConf: o.resolvConf},
	}, kuberuntime.Deps{
		Runtime:  runtime,
		Pods:     pm.source,
		Images:   images.NewPuller(imageService, recorder, images.NewBackoff()),
		Volumes:  volumes{volume.NewManager(o.rootDir, api, clk)},
		Secrets:  api,
		Status:   pm.status,
		Recorder: recorder,
		Clock:    clk,
	})
	pm.workers = kuberuntime.NewWorkers(kuberuntime.WorkerConfig{
		Workers:      16,
		Resync:       o.syncFrequency,
		RelistPeriod: time.Second,
	}, pm.syncer, runtime)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return pm, nil
}

// run starts the informer, waits for its cache (so no pod is mistaken for
// deleted), then syncs pods until ctx ends.
func (pm *podMachinery) run(ctx context.Context) error {
	defer pm.broadcaster.Shutdown()
	go pm.source.Run(ctx)
	if !pm.source.WaitForSync(ctx, 5*time.Minute) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pod cache did not sync")
	}
	klog.FromContext(ctx).Info("Pod cache synced", "pods", len(pm.source.Pods()))
	for _, p := range pm.source.Pods() {
		pm.workers.Enqueue(p.UID)
	}
	go pm.status.Run(ctx, 4)
	pm.workers.Run(ctx)
	return nil
}

// volumes adapts the volume manager to the sync loop's interface.
type volumes struct{ m *volume.Manager }

func (v volumes) SetUp(ctx context.Context, pod *v1.Pod) (kuberuntime.Mounter, error) {
	return v.m.SetUp(ctx, pod)
}

func (v volumes) TearDown(ctx context.Context, uid types.UID) error { return v.m.TearDown(ctx, uid) }
