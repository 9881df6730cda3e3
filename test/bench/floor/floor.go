// Package floor measures what the container runtime alone needs to start a
// container: CRI CreateContainer+StartContainer in sandboxes of its own, with
// no node agent on that runtime (the kubelet would remove sandboxes it does
// not own). It is the floor a node agent's latency is compared with.
package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/load"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/stats"
)

// Label marks every sandbox the floor creates; its value is the run's id.
// A later run removes what a killed one left behind by this label.
const Label = "ephemeral-bench/floor"

// Runtime is the part of the CRI runtime service the floor uses.
type Runtime interface {
	RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error)
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, containerID string) error
}

// Images is the part of the CRI image service the floor uses.
type Images interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// Config is the floor's setup.
type Config struct {
	// Image is the container image, already present in the runtime.
	Image string
	// CgroupParent is the sandboxes' cgroup parent ("" for the runtime's default).
	CgroupParent string
	// Sequential is the number of containers started one at a time.
	Sequential int
	// Concurrent is the number started with InFlight at once.
	Concurrent int
	InFlight   int
	// RunID names this run's sandboxes (label value and name prefix).
	RunID string
}

// sandbox is one sandbox the floor created.
type sandbox struct {
	id     string
	config *runtimeapi.PodSandboxConfig
}

// Run measures both workloads and removes every sandbox it created, also
// when it fails or ctx is cancelled.
func Run(ctx context.Context, rt Runtime, img Images, cfg Config) (res *result.Result, err error) {
	logger := klog.FromContext(ctx)
	started := time.Now()
	st, err := img.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: cfg.Image}, false)
	if err != nil {
		return nil, fmt.Errorf("image status of %s: %w", cfg.Image, err)
	}
	if st.GetImage() == nil {
		return nil, fmt.Errorf("image %s is not in the runtime: import it first", cfg.Image)
	}
	if err := Cleanup(ctx, rt, ""); err != nil {
		return nil, fmt.Errorf("remove an earlier run's sandboxes: %w", err)
	}
	logDir, err := os.MkdirTemp("", "ephemeral-bench-floor-")
	if err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	defer func() {
		// Cleanup must run even when ctx was cancelled (Ctrl-C).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if cerr := Cleanup(cctx, rt, cfg.RunID); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
		_ = os.RemoveAll(logDir)
	}()

	n := max(cfg.Sequential, cfg.Concurrent)
	sandboxes := make([]sandbox, n)
	logger.Info("Creating sandboxes", "count", n)
	if _, err := load.Run(ctx, n, 4, func(ctx context.Context, i int) (time.Duration, error) {
		c := SandboxConfig(cfg.RunID, i, logDir, cfg.CgroupParent)
		id, err := rt.RunPodSandbox(ctx, c, "")
		if err != nil {
			return 0, fmt.Errorf("run sandbox %s: %w", c.Metadata.Name, err)
		}
		sandboxes[i] = sandbox{id: id, config: c}
		return 0, nil
	}); err != nil {
		return nil, err
	}

	res = &result.Result{Name: "floor", Image: cfg.Image, Started: started.UTC().Format(time.RFC3339),
		Workloads: map[string]result.Workload{}}
	for _, w := range []struct {
		name        string
		count, inFl int
		prefix      string
	}{
		{result.OneRunning, cfg.Sequential, 1, "seq"},
		{result.ConcurrentRunning, cfg.Concurrent, cfg.InFlight, "conc"},
	} {
		logger.Info("Measuring", "workload", w.name, "count", w.count, "inFlight", w.inFl)
		lat, err := load.Run(ctx, w.count, w.inFl, func(ctx context.Context, i int) (time.Duration, error) {
			sb := sandboxes[i]
			c := ContainerConfig(w.prefix, cfg.Image)
			t0 := time.Now()
			id, err := rt.CreateContainer(ctx, sb.id, c, sb.config)
			if err != nil {
				return 0, fmt.Errorf("create container %s in sandbox %s: %w", c.Metadata.Name, sb.config.Metadata.Name, err)
			}
			if err := rt.StartContainer(ctx, id); err != nil {
				return 0, fmt.Errorf("start container %s in sandbox %s: %w", c.Metadata.Name, sb.config.Metadata.Name, err)
			}
			return time.Since(t0), nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
		res.Workloads[w.name] = result.Workload{Summary: stats.Summarize(lat), Pods: n, InFlight: w.inFl}
	}
	res.DurationS = time.Since(started).Round(100 * time.Millisecond).Seconds()
	return res, nil
}

// SandboxConfig is the i-th sandbox of a run: a distinct name and uid, and
// the floor's label so that Cleanup finds it.
func SandboxConfig(runID string, i int, logDir, cgroupParent string) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("floor-%s-%03d", runID, i)
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ephemeral-bench", Uid: name},
		Hostname:     name,
		LogDirectory: logDir,
		Labels:       map[string]string{Label: runID},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

// ContainerConfig is a measured container: the image running `sleep 3600`,
// logging like a node agent's containers do.
func ContainerConfig(name, image string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"sleep", "3600"},
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

// Cleanup stops and removes the floor's sandboxes of run runID ("" for
// every run); removing a sandbox removes its containers.
func Cleanup(ctx context.Context, rt Runtime, runID string) error {
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var (
		mu      sync.Mutex
		errs    []error
		removed int
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 4)
	)
	for _, sb := range sbs {
		v, ok := sb.GetLabels()[Label]
		if !ok || (runID != "" && v != runID) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := rt.StopPodSandbox(ctx, sb.Id)
			if err != nil {
				err = fmt.Errorf("stop sandbox %s: %w", sb.GetMetadata().GetName(), err)
			} else if err = rt.RemovePodSandbox(ctx, sb.Id); err != nil {
				err = fmt.Errorf("remove sandbox %s: %w", sb.GetMetadata().GetName(), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			removed++
		})
	}
	wg.Wait()
	klog.FromContext(ctx).V(2).Info("Removed floor sandboxes", "count", removed)
	return errors.Join(errs...)
}
