package criinstrument

import (
	"context"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeService records every RuntimeService call under the kubelet's
// operation_type. It embeds the service so that a method a later cri-api
// adds passes through, uncounted, until it is listed here.
type runtimeService struct {
	internalapi.RuntimeService
	m *Metrics
}

func (s *runtimeService) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	return call(s.m, "version", func() (*runtimeapi.VersionResponse, error) {
		return s.RuntimeService.Version(ctx, apiVersion)
	})
}

func (s *runtimeService) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	return call(s.m, "status", func() (*runtimeapi.StatusResponse, error) {
		return s.RuntimeService.Status(ctx, verbose)
	})
}

func (s *runtimeService) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	return call(s.m, "runtime_config", func() (*runtimeapi.RuntimeConfigResponse, error) {
		return s.RuntimeService.RuntimeConfig(ctx)
	})
}

func (s *runtimeService) UpdateRuntimeConfig(ctx context.Context, runtimeConfig *runtimeapi.RuntimeConfig) error {
	return callErr(s.m, "update_runtime_config", func() error {
		return s.RuntimeService.UpdateRuntimeConfig(ctx, runtimeConfig)
	})
}

func (s *runtimeService) Close(ctx context.Context) error {
	return callErr(s.m, "close", func() error { return s.RuntimeService.Close(ctx) })
}

func (s *runtimeService) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	return call(s.m, "create_container", func() (string, error) {
		return s.RuntimeService.CreateContainer(ctx, podSandboxID, config, sandboxConfig)
	})
}

func (s *runtimeService) StartContainer(ctx context.Context, containerID string) error {
	return callErr(s.m, "start_container", func() error { return s.RuntimeService.StartContainer(ctx, containerID) })
}

func (s *runtimeService) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	return callErr(s.m, "stop_container", func() error { return s.RuntimeService.StopContainer(ctx, containerID, timeout) })
}

func (s *runtimeService) RemoveContainer(ctx context.Context, containerID string) error {
	return callErr(s.m, "remove_container", func() error { return s.RuntimeService.RemoveContainer(ctx, containerID) })
}

func (s *runtimeService) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	return call(s.m, "list_containers", func() ([]*runtimeapi.Container, error) {
		return s.RuntimeService.ListContainers(ctx, filter)
	})
}

func (s *runtimeService) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	return call(s.m, "container_status", func() (*runtimeapi.ContainerStatusResponse, error) {
		return s.RuntimeService.ContainerStatus(ctx, containerID, verbose)
	})
}

func (s *runtimeService) UpdateContainerResources(ctx context.Context, containerID string, resources *runtimeapi.ContainerResources) error {
	return callErr(s.m, "update_container", func() error {
		return s.RuntimeService.UpdateContainerResources(ctx, containerID, resources)
	})
}

func (s *runtimeService) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	start := time.Now()
	stdout, stderr, err := s.RuntimeService.ExecSync(ctx, containerID, cmd, timeout)
	s.m.record("exec_sync", start, err)
	return stdout, stderr, err
}

// Exec, Attach and PortForward only ask the runtime for a streaming URL:
// what is timed is that request, not the session.

func (s *runtimeService) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return call(s.m, "exec", func() (*runtimeapi.ExecResponse, error) { return s.RuntimeService.Exec(ctx, req) })
}

func (s *runtimeService) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return call(s.m, "attach", func() (*runtimeapi.AttachResponse, error) { return s.RuntimeService.Attach(ctx, req) })
}

func (s *runtimeService) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return call(s.m, "port_forward", func() (*runtimeapi.PortForwardResponse, error) {
		return s.RuntimeService.PortForward(ctx, req)
	})
}

func (s *runtimeService) ReopenContainerLog(ctx context.Context, containerID string) error {
	return callErr(s.m, "reopen_container_log", func() error { return s.RuntimeService.ReopenContainerLog(ctx, containerID) })
}

func (s *runtimeService) CheckpointContainer(ctx context.Context, options *runtimeapi.CheckpointContainerRequest) error {
	return callErr(s.m, "checkpoint_container", func() error { return s.RuntimeService.CheckpointContainer(ctx, options) })
}

// GetContainerEvents is counted when the stream ends, as the kubelet's.
func (s *runtimeService) GetContainerEvents(ctx context.Context, containerEventsCh chan *runtimeapi.ContainerEventResponse, connectionEstablishedCallback func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	return callErr(s.m, "get_container_events", func() error {
		return s.RuntimeService.GetContainerEvents(ctx, containerEventsCh, connectionEstablishedCallback)
	})
}

func (s *runtimeService) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	return call(s.m, "run_podsandbox", func() (string, error) {
		return s.RuntimeService.RunPodSandbox(ctx, config, runtimeHandler)
	})
}

func (s *runtimeService) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	return callErr(s.m, "stop_podsandbox", func() error { return s.RuntimeService.StopPodSandbox(ctx, podSandboxID) })
}

func (s *runtimeService) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	return callErr(s.m, "remove_podsandbox", func() error { return s.RuntimeService.RemovePodSandbox(ctx, podSandboxID) })
}

func (s *runtimeService) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	return call(s.m, "podsandbox_status", func() (*runtimeapi.PodSandboxStatusResponse, error) {
		return s.RuntimeService.PodSandboxStatus(ctx, podSandboxID, verbose)
	})
}

func (s *runtimeService) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	return call(s.m, "list_podsandbox", func() ([]*runtimeapi.PodSandbox, error) {
		return s.RuntimeService.ListPodSandbox(ctx, filter)
	})
}

func (s *runtimeService) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	return call(s.m, "update_podsandbox_resources", func() (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
		return s.RuntimeService.UpdatePodSandboxResources(ctx, req)
	})
}

func (s *runtimeService) CheckpointPod(ctx context.Context, options *runtimeapi.CheckpointPodRequest) error {
	return callErr(s.m, "checkpoint_pod", func() error { return s.RuntimeService.CheckpointPod(ctx, options) })
}

func (s *runtimeService) RestorePod(ctx context.Context, options *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return call(s.m, "restore_pod", func() (*runtimeapi.RestorePodResponse, error) {
		return s.RuntimeService.RestorePod(ctx, options)
	})
}

func (s *runtimeService) ContainerStats(ctx context.Context, containerID string) (*runtimeapi.ContainerStats, error) {
	return call(s.m, "container_stats", func() (*runtimeapi.ContainerStats, error) {
		return s.RuntimeService.ContainerStats(ctx, containerID)
	})
}

func (s *runtimeService) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	return call(s.m, "list_container_stats", func() ([]*runtimeapi.ContainerStats, error) {
		return s.RuntimeService.ListContainerStats(ctx, filter)
	})
}

func (s *runtimeService) PodSandboxStats(ctx context.Context, podSandboxID string) (*runtimeapi.PodSandboxStats, error) {
	return call(s.m, "podsandbox_stats", func() (*runtimeapi.PodSandboxStats, error) {
		return s.RuntimeService.PodSandboxStats(ctx, podSandboxID)
	})
}

func (s *runtimeService) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	return call(s.m, "list_podsandbox_stats", func() ([]*runtimeapi.PodSandboxStats, error) {
		return s.RuntimeService.ListPodSandboxStats(ctx, filter)
	})
}

func (s *runtimeService) ListMetricDescriptors(ctx context.Context) ([]*runtimeapi.MetricDescriptor, error) {
	return call(s.m, "list_metric_descriptors", func() ([]*runtimeapi.MetricDescriptor, error) {
		return s.RuntimeService.ListMetricDescriptors(ctx)
	})
}

func (s *runtimeService) ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	return call(s.m, "list_podsandbox_metrics", func() ([]*runtimeapi.PodSandboxMetrics, error) {
		return s.RuntimeService.ListPodSandboxMetrics(ctx)
	})
}

// imageService records every ImageManagerService call under the kubelet's
// operation_type; methods not listed here pass through uncounted.
type imageService struct {
	internalapi.ImageManagerService
	m *Metrics
}

func (s *imageService) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	return call(s.m, "list_images", func() ([]*runtimeapi.Image, error) {
		return s.ImageManagerService.ListImages(ctx, filter)
	})
}

func (s *imageService) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	return call(s.m, "image_status", func() (*runtimeapi.ImageStatusResponse, error) {
		return s.ImageManagerService.ImageStatus(ctx, image, verbose)
	})
}

func (s *imageService) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	return call(s.m, "pull_image", func() (string, error) {
		return s.ImageManagerService.PullImage(ctx, image, auth, podSandboxConfig)
	})
}

func (s *imageService) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	return callErr(s.m, "remove_image", func() error { return s.ImageManagerService.RemoveImage(ctx, image) })
}

// ImageFsInfo returns the runtime's error, unlike the kubelet's wrapper,
// which counts it and then drops it.
func (s *imageService) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	return call(s.m, "image_fs_info", func() (*runtimeapi.ImageFsInfoResponse, error) {
		return s.ImageManagerService.ImageFsInfo(ctx)
	})
}

func (s *imageService) Close(ctx context.Context) error {
	return callErr(s.m, "close", func() error { return s.ImageManagerService.Close(ctx) })
}
