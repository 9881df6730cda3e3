// Command ephemeral-agent is a node agent for Kubernetes: it registers its
// Node, keeps it Ready while the CRI runtime is healthy, and serves the
// kubelet-style API. This file only wires packages together; the logic lives
// under pkg/.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/auth"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criinstrument"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/logs"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/node"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/server"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/stats"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/streaming"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/targetcheck"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/version"
)

func main() {
	o := defaultOptions()
	fs := pflag.NewFlagSet("ephemeral-agent", pflag.ContinueOnError)
	o.addFlags(fs)
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.cgroupDriverExplicit = fs.Changed("cgroup-driver")
	if *showVersion {
		fmt.Println("ephemeral-agent", version.Get())
		return
	}
	if err := o.complete(); err != nil {
		fmt.Fprintln(os.Stderr, "ephemeral-agent:", err)
		os.Exit(1)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "ephemeral-agent: invalid flags:\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	if err := run(ctx, o); err != nil {
		logger.Error(err, "Agent failed")
		klog.Flush()
		os.Exit(1)
	}
	logger.Info("Agent stopped")
	klog.Flush()
}

func run(ctx context.Context, o *options) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting ephemeral-agent", "version", version.Get(), "node", o.nodeName, "runtimeEndpoint", o.containerRuntimeEndpoint)

	restCfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	restCfg.UserAgent = "ephemeral-agent/" + version.Get()
	clients, err := newAPIClients(ctx, restCfg, clientOptions{
		QPS:              float32(o.kubeAPIQPS),
		Burst:            int(o.kubeAPIBurst),
		RequestTimeout:   apiRequestTimeout,
		HeartbeatTimeout: heartbeatTimeout(o.nodeStatusUpdateFreq, time.Duration(o.nodeLeaseDurationSeconds)*time.Second),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.rootDir, 0o750); err != nil {
		return fmt.Errorf("create root dir: %w", err)
	}
	machine, err := node.ReadMachineInfo(o.rootDir, o.maxPods)
	if err != nil {
		return err
	}
	// A policy file with errors stops the agent here, before any debug
	// container could run under a policy its operator did not write.
	var policy *debugpolicy.Source
	if o.debugPolicyConfig != "" {
		if policy, err = debugpolicy.NewSource(o.debugPolicyConfig); err != nil {
			return err
		}
		logger.Info("Loaded debug policy", "path", o.debugPolicyConfig, "rules", len(policy.Policy().Rules))
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every CRI call, whoever makes it (syncs, relists, node status,
	// stats, streaming), is counted as the kubelet counts its own.
	criMetrics := criinstrument.NewMetrics(registry)
	runtime, err := connectRuntime(ctx, o.containerRuntimeEndpoint, o.runtimeRequestTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	runtime = criMetrics.RuntimeService(runtime)
	defer runtime.Close(context.WithoutCancel(ctx))

	// The TARGET preflight's result is reported on the Node and held by the
	// sync loop; without the flag there is neither, and the condition an
	// earlier run reported goes.
	var (
		preflight  *targetcheck.Preflight
		conditions []node.ConditionSource
		removed    = []v1.NodeConditionType{targetcheck.ConditionType}
		targets    kuberuntime.TargetNamespaces
	)
	if o.debugTargetPreflight {
		preflight = targetcheck.NewPreflight(registry)
		conditions, removed, targets = []node.ConditionSource{preflight}, nil, preflight
	}

	kubeReserved, systemReserved, evictionHard := o.reservations()
	imageService, err := remote.NewRemoteImageServiceBuilder().
		WithEndpoint(o.containerRuntimeEndpoint).
		WithConnectionTimeout(o.runtimeRequestTimeout).
		Build(ctx)
	if err != nil {
		return fmt.Errorf("connect to image service: %w", err)
	}
	imageService = criMetrics.ImageService(imageService)
	defer imageService.Close(context.WithoutCancel(ctx))
	nodes := node.NewController(node.Config{
		NodeName:                 o.nodeName,
		Hostname:                 o.hostnameOverride,
		NodeIP:                   net.ParseIP(o.nodeIP),
		Port:                     int32(o.port),
		KubeletVersion:           version.Kubernetes,
		AgentVersion:             version.Get(),
		MaxImages:                o.nodeStatusMaxImages,
		KubeReserved:             kubeReserved,
		SystemReserved:           systemReserved,
		EvictionHard:             evictionHard,
		RootDir:                  o.rootDir,
		PressureTransitionPeriod: o.evictionPressurePeriod,
		Labels:                   o.nodeLabels,
		StatusUpdateFrequency:    o.nodeStatusUpdateFreq,
		StatusReportFrequency:    o.nodeStatusReportFreq,
		LeaseDuration:            time.Duration(o.nodeLeaseDurationSeconds) * time.Second,
		RuntimeStatusTimeout:     min(o.runtimeRequestTimeout, 5*time.Second),
		Conditions:               conditions,
		RemovedConditions:        removed,
	}, clients.heartbeat, runtime, imageService, machine, clock.RealClock{})

	// Debug sessions keep the idle clocks of debug containers; the end of
	// one syncs its pod, whose next idle deadline then counts from it.
	var pm *podMachinery
	activity := streaming.NewActivity(time.Now, func(uid types.UID) { pm.workers.Enqueue(uid) })
	auditor, err := streaming.NewAuditor(o.debugAuditLog)
	if err != nil {
		return err
	}
	defer auditor.Close()
	pm, err = newPodMachinery(ctx, o, clients, runtime, criMetrics, machine, nodes.LocalNode, registry, debugControl{policy: policy, sessions: activity, audit: auditor}, targets)
	if err != nil {
		return err
	}
	host, err := stats.NewHost("/proc")
	if err != nil {
		return err
	}
	summary := stats.NewProvider(stats.Config{
		NodeName: o.nodeName, RootDir: o.rootDir, PodLogsDir: o.podLogsDir,
		Runtime: runtime, Images: imageService, Host: host,
	})
	// The resource metrics have a registry of their own, as the kubelet's:
	// each scrape of /metrics/resource computes a summary, which /metrics
	// scrapes must not pay for.
	resourceMetrics := prometheus.NewRegistry()
	resourceMetrics.MustRegister(stats.NewResourceMetricsCollector(ctx, summary))
	streamingMetrics := streaming.NewMetrics(registry)
	guard, err := auth.New(o.nodeName, auth.Options{
		ClientCAFile:         o.clientCAFile,
		Anonymous:            o.anonymousAuth,
		TokenWebhook:         o.tokenWebhook,
		TokenWebhookCacheTTL: o.tokenWebhookCacheTTL,
		Mode:                 o.authorizationMode,
		AuthorizedTTL:        o.authzAuthorizedTTL,
		UnauthorizedTTL:      o.authzUnauthorizedTTL,
		// Refused attempts on the debug routes are audited too.
		Refusals: streaming.NewRefusals(auditor, streamingMetrics, streaming.RefusalLimit{}),
	}, clients.api)
	if err != nil {
		return fmt.Errorf("agent API authentication: %w", err)
	}
	if o.authorizationMode == auth.ModeAlwaysAllow {
		logger.Info("Authorizing every authenticated request to the agent API, for local demos only", "authorizationMode", o.authorizationMode)
	}
	// A nil *Source in the interface would be non-nil; the server's own
	// nil is what says "no policy".
	var policySnapshots server.DebugPolicy
	if policy != nil {
		policySnapshots = policy
	}
	sessions := streaming.NewHandler(streaming.Config{
		Pods:     streaming.FromPodState(pm.lookup),
		Runtime:  runtime,
		Auditor:  auditor,
		Metrics:  streamingMetrics,
		Activity: activity,
	})
	srv := server.New(server.Config{
		Address:        o.address,
		Port:           o.port,
		TLSCertFile:    o.tlsCertFile,
		TLSKeyFile:     o.tlsPrivateKeyFile,
		CertDir:        o.certDir,
		NodeName:       o.nodeName,
		NodeIPs:        []net.IP{net.ParseIP(o.nodeIP)},
		Auth:           guard.Wrap,
		HealthzAddress: o.healthzBindAddress,
		HealthzPort:    o.healthzPort,
		Gatherer:       registry,
		Pods:           pm.source,
		Runtime:        runtime,
		DebugPolicy:    policySnapshots,
		Handlers: map[string]http.Handler{
			"/containerLogs/": logs.NewHandler(logs.FromPodState(pm.lookup), runtime),
			"/exec/":          sessions,
			"/attach/":        sessions,
			"/portForward/":   sessions,
		},
		Stats:           summary,
		ResourceMetrics: resourceMetrics,
	}, healthChecks(nodes, pm.workers)...)

	// Any component failing stops the others: a half-running agent would
	// look healthy to the control plane while doing nothing.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errsMu   sync.Mutex
		firstErr error
	)
	runPart := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				errsMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				errsMu.Unlock()
			}
			cancel()
		})
	}
	runPart("server", srv.Run)
	runPart("client CA reload", guard.Run)
	runPart("node", nodes.Run)
	runPart("pods", func(ctx context.Context) error {
		// The check runs before any pod syncs, so that no debug container
		// with a target starts on a runtime not yet checked. It takes
		// about a second and is bounded by targetcheck.DefaultTimeout;
		// the node registers meanwhile.
		if preflight != nil {
			preflight.Set(targetcheck.Run(ctx, runtime, targetcheck.Config{Images: imageService}))
		}
		return pm.run(ctx)
	})
	if policy != nil {
		runPart("debug policy reload", func(ctx context.Context) error {
			policy.Run(ctx, policyReloadPeriod)
			return nil
		})
	}
	wg.Wait()
	return firstErr
}

// policyReloadPeriod is how often the debug policy file is checked for a
// change: a ConfigMap update reaches the node's file within about a minute,
// so a couple of seconds more is nothing, and reading one small file costs
// nothing either.
const policyReloadPeriod = 2 * time.Second

// connectRuntime connects to the CRI runtime, waiting for it to answer: an
// agent started before its runtime (at boot, or while containerd restarts)
// waits instead of exiting.
func connectRuntime(ctx context.Context, endpoint string, timeout time.Duration) (internalapi.RuntimeService, error) {
	logger := klog.FromContext(ctx)
	var rs internalapi.RuntimeService
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: 1 << 30},
		func(ctx context.Context) (bool, error) {
			var err error
			rs, err = remote.NewRemoteRuntimeServiceBuilder().
				WithEndpoint(endpoint).
				WithConnectionTimeout(timeout).
				Build(ctx)
			if err != nil {
				logger.Info("Waiting for the container runtime", "endpoint", endpoint, "err", err)
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return nil, fmt.Errorf("connect to container runtime %s: %w", endpoint, err)
	}
	logger.Info("Connected to the container runtime", "endpoint", endpoint)
	return rs, nil
}

// healthChecks are the checks of /healthz, on the TLS port and the plain
// one alike: the kubelet's ping and syncloop, its PLEG check (the relist),
// and whether the runtime is up as the node's Ready condition last saw it.
func healthChecks(nodes *node.Controller, workers *kuberuntime.Workers) []server.Check {
	return []server.Check{
		{Name: "ping", Check: func() error { return nil }},
		{Name: "syncloop", Check: workers.SyncLoopHealthy},
		{Name: "pleg", Check: workers.RelistHealthy},
		{Name: "runtime", Check: func() error { return nodes.RuntimeHealth().RuntimeError() }},
	}
}
