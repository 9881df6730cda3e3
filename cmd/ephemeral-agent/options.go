package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/auth"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/cm"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/node"
)

// options are the agent's command-line flags. Names, meanings and defaults
// follow the kubelet's wherever the kubelet has the same flag, so operators
// can carry their habits and scripts over.
type options struct {
	kubeconfig               string
	kubeAPIQPS               int32
	kubeAPIBurst             int32
	hostnameOverride         string
	nodeName                 string
	nodeIP                   string
	nodeLabels               map[string]string
	containerRuntimeEndpoint string
	runtimeRequestTimeout    time.Duration
	imagePullTimeout         time.Duration
	rootDir                  string
	podLogsDir               string
	address                  string
	port                     int
	healthzBindAddress       string
	healthzPort              int
	tlsCertFile              string
	tlsPrivateKeyFile        string
	clientCAFile             string
	certDir                  string
	anonymousAuth            bool
	tokenWebhook             bool
	tokenWebhookCacheTTL     time.Duration
	authorizationMode        string
	authzAuthorizedTTL       time.Duration
	authzUnauthorizedTTL     time.Duration
	debugAuditLog            string
	debugPolicyConfig        string
	debugTargetPreflight     bool
	maxPods                  int64
	nodeStatusUpdateFreq     time.Duration
	nodeStatusReportFreq     time.Duration
	nodeLeaseDurationSeconds int32
	syncFrequency            time.Duration
	podSyncWorkers           int
	relistPeriod             time.Duration
	relistPeriodNoEvents     time.Duration
	runtimeEvents            bool
	statusUpdateWorkers      int
	cacheSyncTimeout         time.Duration
	clusterDNS               []string
	clusterDomain            string
	resolvConf               string
	nodeStatusMaxImages      int
	kubeReserved             map[string]string
	systemReserved           map[string]string
	evictionHard             string
	evictionPressurePeriod   time.Duration
	cgroupsPerQOS            bool
	cgroupRoot               string
	cgroupDriver             string
	// cgroupDriverExplicit says --cgroup-driver was given, so that a
	// runtime that tells another driver is logged.
	cgroupDriverExplicit bool
	podMaxPids           int64
}

func defaultOptions() *options {
	return &options{
		containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
		kubeAPIQPS:               50,
		kubeAPIBurst:             100,
		runtimeRequestTimeout:    2 * time.Minute,
		imagePullTimeout:         2 * time.Minute,
		rootDir:                  "/var/lib/ephemeral-agent",
		podLogsDir:               "/var/log/pods",
		address:                  "0.0.0.0",
		port:                     10250,
		healthzBindAddress:       "127.0.0.1",
		healthzPort:              10248,
		maxPods:                  110,
		nodeStatusUpdateFreq:     10 * time.Second,
		nodeStatusReportFreq:     5 * time.Minute,
		nodeLeaseDurationSeconds: 40,
		syncFrequency:            time.Minute,
		podSyncWorkers:           32,
		relistPeriod:             10 * time.Second,
		relistPeriodNoEvents:     time.Second,
		runtimeEvents:            true,
		statusUpdateWorkers:      4,
		cacheSyncTimeout:         5 * time.Minute,
		resolvConf:               "/etc/resolv.conf",
		tokenWebhook:             true,
		tokenWebhookCacheTTL:     2 * time.Minute,
		authorizationMode:        auth.ModeWebhook,
		authzAuthorizedTTL:       5 * time.Minute,
		authzUnauthorizedTTL:     30 * time.Second,
		nodeStatusMaxImages:      node.DefaultMaxImages,
		evictionHard:             node.DefaultEvictionHard,
		evictionPressurePeriod:   node.DefaultPressureTransitionPeriod,
		cgroupsPerQOS:            true,
		cgroupRoot:               "/",
		cgroupDriver:             string(cm.DriverCgroupfs),
		podMaxPids:               -1,
	}
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "Path to a kubeconfig file with the node's credentials for the API server.")
	fs.Int32Var(&o.kubeAPIQPS, "kube-api-qps", o.kubeAPIQPS, "QPS to use while talking with the API server; 0 for client-go's default (5). Does not cover Events and the node heartbeat (Lease and node status), which have budgets of their own.")
	fs.Int32Var(&o.kubeAPIBurst, "kube-api-burst", o.kubeAPIBurst, "Burst to use while talking with the API server; 0 for client-go's default (10).")
	fs.StringVar(&o.hostnameOverride, "hostname-override", o.hostnameOverride, "If non-empty, use this string as the node's hostname (and its name, unless --node-name is given) instead of the machine's.")
	fs.StringVar(&o.nodeName, "node-name", o.nodeName, "Name of the Node object to register. Defaults to the hostname.")
	fs.StringVar(&o.nodeIP, "node-ip", o.nodeIP, "IP address of the node, reported as its InternalIP; the API server reaches the agent there. Defaults to the first non-loopback IPv4 address.")
	fs.StringToStringVar(&o.nodeLabels, "node-labels", o.nodeLabels, "Labels to add when registering the node, as key=value pairs separated by ','.")
	fs.StringVar(&o.containerRuntimeEndpoint, "container-runtime-endpoint", o.containerRuntimeEndpoint, "The endpoint of the CRI runtime service, e.g. unix:///run/containerd/containerd.sock.")
	fs.DurationVar(&o.runtimeRequestTimeout, "runtime-request-timeout", o.runtimeRequestTimeout, "Timeout of CRI requests, except long-running ones (pull, logs, exec, attach).")
	// The kubelet has no such flag (its pulls have no deadline but
	// containerd's image_pull_progress_timeout); the default is that of
	// --runtime-request-timeout.
	fs.DurationVar(&o.imagePullTimeout, "image-pull-timeout", o.imagePullTimeout, "Longest time one image pull may take; a pull still running then fails with ErrImagePull and the pod's image pull backoff applies (layers already fetched are kept for the retry). Raise it for large images on slow registries. Pulls run in the background, one at a time per image and pull credentials: a pod waiting for one shows the Waiting reason Pulling and holds no pod sync worker.")
	fs.StringVar(&o.rootDir, "root-dir", o.rootDir, "Directory for the agent's files (durable records, volumes).")
	fs.StringVar(&o.podLogsDir, "pod-logs-dir", o.podLogsDir, "Directory under which container logs are written, one NAMESPACE_NAME_UID directory per pod.")
	fs.StringVar(&o.address, "address", o.address, "IP address the agent API listens on (0.0.0.0 for all interfaces).")
	fs.IntVar(&o.port, "port", o.port, "Port of the agent API (TLS).")
	fs.StringVar(&o.healthzBindAddress, "healthz-bind-address", o.healthzBindAddress, "IP address of the plain-HTTP healthz server.")
	fs.IntVar(&o.healthzPort, "healthz-port", o.healthzPort, "Port of the plain-HTTP healthz server; 0 disables it.")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", o.tlsCertFile, "File holding the x509 serving certificate of the agent API. Without it and --tls-private-key-file, a self-signed pair for the node name and IP is made in --cert-dir (kubelet.crt, kubelet.key) and reused on restart.")
	fs.StringVar(&o.tlsPrivateKeyFile, "tls-private-key-file", o.tlsPrivateKeyFile, "File holding the private key of --tls-cert-file.")
	fs.StringVar(&o.certDir, "cert-dir", o.certDir, "Directory of the self-signed serving certificate used when --tls-cert-file is not given. Defaults to <root-dir>/pki.")
	fs.StringVar(&o.clientCAFile, "client-ca-file", o.clientCAFile, "CA bundle whose client certificates authenticate callers of the agent API (CN is the user, O the groups).")
	fs.BoolVar(&o.anonymousAuth, "anonymous-auth", o.anonymousAuth, "Let requests without credentials in as system:anonymous (still subject to authorization). Off by default, unlike the kubelet.")
	fs.BoolVar(&o.tokenWebhook, "authentication-token-webhook", o.tokenWebhook, "Authenticate bearer tokens with the TokenReview API.")
	fs.DurationVar(&o.tokenWebhookCacheTTL, "authentication-token-webhook-cache-ttl", o.tokenWebhookCacheTTL, "How long TokenReview answers are cached.")
	fs.StringVar(&o.authorizationMode, "authorization-mode", o.authorizationMode, "Authorization of agent API requests: Webhook (SubjectAccessReview on nodes/<subresource>) or AlwaysAllow (every authenticated request; for local demos only).")
	fs.DurationVar(&o.authzAuthorizedTTL, "authorization-webhook-cache-authorized-ttl", o.authzAuthorizedTTL, "How long allowing SubjectAccessReview answers are cached.")
	fs.DurationVar(&o.authzUnauthorizedTTL, "authorization-webhook-cache-unauthorized-ttl", o.authzUnauthorizedTTL, "How long denying SubjectAccessReview answers are cached.")
	fs.StringVar(&o.debugPolicyConfig, "debug-policy-config", o.debugPolicyConfig, "File with the node's debug policy (kind DebugPolicy, apiVersion debug.ephemeral-agent.io/v1alpha1; see docs/debug-control.md): which debug (ephemeral) containers may run and with what limits. Reloaded when it changes; a file with errors is refused, at start (the agent exits) and on reload (the previous policy stays). Empty: every debug container the API accepts runs, as with the kubelet.")
	fs.BoolVar(&o.debugTargetPreflight, "debug-target-preflight", o.debugTargetPreflight, "At start, before any pod syncs, run two throwaway containers of the runtime's pause image to check that the runtime puts a container created with PID namespace mode TARGET (kubectl debug --target) in its target container's PID namespace (see docs/debug-control.md). The result is the node condition EphemeralTargetNamespace and the metric ephemeral_agent_target_preflight_result; where the runtime is proven not to share it, such debug containers are not started and wait with reason TargetNamespaceUnsupported. A check that cannot run holds nothing back. Off: no check, as with the kubelet.")
	fs.StringVar(&o.debugAuditLog, "debug-audit-log", o.debugAuditLog, "File to append one JSON line to per exec, attach and port-forward session (who, where, command, duration, bytes, exit code), and per such request refused by authentication or authorization (rate-limited). Empty: they are only logged.")
	fs.Int64Var(&o.maxPods, "max-pods", o.maxPods, "Number of pods the node reports it can run.")
	fs.DurationVar(&o.nodeStatusUpdateFreq, "node-status-update-frequency", o.nodeStatusUpdateFreq, "How often the agent checks the runtime and posts a changed node status.")
	fs.DurationVar(&o.nodeStatusReportFreq, "node-status-report-frequency", o.nodeStatusReportFreq, "Longest time between two node status posts when nothing changed.")
	fs.IntVar(&o.nodeStatusMaxImages, "node-status-max-images", o.nodeStatusMaxImages, "Number of images, largest first, reported in the node's status.images; -1 for all.")
	fs.StringToStringVar(&o.kubeReserved, "kube-reserved", o.kubeReserved, "Resources kept from the node's allocatable for Kubernetes daemons, as resource=quantity pairs (cpu, memory, ephemeral-storage, pid), e.g. cpu=100m,memory=100Mi.")
	fs.StringToStringVar(&o.systemReserved, "system-reserved", o.systemReserved, "Resources kept from the node's allocatable for the system's daemons, in the format of --kube-reserved.")
	fs.StringVar(&o.evictionHard, "eviction-hard", o.evictionHard, "Hard eviction thresholds, signal<quantity or signal<percentage%, separated by ','; those of memory.available and nodefs.available are kept from allocatable memory and ephemeral-storage. A value replaces the default set; empty for none.")
	fs.DurationVar(&o.evictionPressurePeriod, "eviction-pressure-transition-period", o.evictionPressurePeriod, "How long the node's MemoryPressure, DiskPressure and PIDPressure conditions stay true after the pressure ended. The agent evicts no pods: the conditions only inform the scheduler.")
	fs.BoolVar(&o.cgroupsPerQOS, "cgroups-per-qos", o.cgroupsPerQOS, "Run each pod in a cgroup of its own, below its QoS class's (kubepods, kubepods/burstable, kubepods/besteffort) under --cgroup-root. Off: the runtime chooses the containers' cgroups.")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", o.cgroupRoot, "Cgroup (cgroupfs path) below which the pod cgroup hierarchy goes; it must exist.")
	fs.StringVar(&o.cgroupDriver, "cgroup-driver", o.cgroupDriver, "Driver of the pod cgroups, cgroupfs or systemd, used when the container runtime does not tell its own (CRI RuntimeConfig); it must be the runtime's.")
	fs.Int64Var(&o.podMaxPids, "pod-max-pids", o.podMaxPids, "Most processes a pod's cgroup may hold; -1 for no limit.")
	fs.Int32Var(&o.nodeLeaseDurationSeconds, "node-lease-duration-seconds", o.nodeLeaseDurationSeconds, "Duration of the node Lease; it is renewed every quarter of it.")

	fs.DurationVar(&o.syncFrequency, "sync-frequency", o.syncFrequency, "Longest time between two syncs of a pod when nothing happens (volumes and tokens are refreshed then).")
	// The kubelet has no flags for these; its PLEG relists every second
	// and it syncs pods in one goroutine each.
	fs.IntVar(&o.podSyncWorkers, "pod-sync-workers", o.podSyncWorkers, "How many pods sync in parallel (one sync per pod at a time). The kubelet has no such bound (a goroutine per pod); 32 lets 20 debug requests at once proceed together, with room for the pods' own restarts.")
	fs.DurationVar(&o.relistPeriod, "relist-period", o.relistPeriod, "How often the runtime is listed while its container events are watched (--runtime-events): the events notice container state changes, exits above all, at once; the relist is only the safety net for one they missed, so it may be slow.")
	fs.DurationVar(&o.relistPeriodNoEvents, "relist-period-without-events", o.relistPeriodNoEvents, "How often the runtime is listed while no event stream is connected (--runtime-events off, a runtime that serves no events, a stream down): the relist alone notices container state changes then (the kubelet's PLEG relist period).")
	fs.BoolVar(&o.runtimeEvents, "runtime-events", o.runtimeEvents, "Watch the runtime's container events (CRI GetContainerEvents, else containerd's event service on the same socket) to notice container state changes at once. Off: only the relist every --relist-period-without-events notices them.")
	fs.IntVar(&o.statusUpdateWorkers, "status-update-workers", o.statusUpdateWorkers, "How many pod statuses are sent to the API server in parallel.")
	fs.DurationVar(&o.cacheSyncTimeout, "cache-sync-timeout", o.cacheSyncTimeout, "How long to wait at start for the cache of the node's pods; the agent exits if it does not fill in time.")
	fs.StringSliceVar(&o.clusterDNS, "cluster-dns", o.clusterDNS, "Comma-separated DNS server IPs for pods with dnsPolicy ClusterFirst; without them such pods use the node's resolv.conf.")
	fs.StringVar(&o.clusterDomain, "cluster-domain", o.clusterDomain, "The cluster's DNS domain, added to pods' search paths.")
	fs.StringVar(&o.resolvConf, "resolv-conf", o.resolvConf, "Resolver configuration file used as the basis of pods' DNS (dnsPolicy Default).")

	// klog's own flags (-v, --vmodule, ...), as every Kubernetes component has.
	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	fs.AddGoFlagSet(gofs)
}

// complete fills the defaults that depend on the machine.
func (o *options) complete() error {
	if o.hostnameOverride == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("get hostname: %w", err)
		}
		o.hostnameOverride = h
	}
	o.hostnameOverride = strings.ToLower(strings.TrimSpace(o.hostnameOverride))
	if o.nodeName == "" {
		o.nodeName = o.hostnameOverride
	}
	if o.nodeIP == "" {
		ip, err := firstIPv4()
		if err != nil {
			return err
		}
		o.nodeIP = ip.String()
	}
	if o.certDir == "" {
		o.certDir = filepath.Join(o.rootDir, "pki")
	}
	return nil
}

// validate reports every bad flag at once, so one run tells the operator
// all that is wrong.
func (o *options) validate() error {
	var errs []error
	if o.kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	if o.nodeName == "" {
		errs = append(errs, errors.New("--node-name must not be empty"))
	}
	if net.ParseIP(o.nodeIP) == nil {
		errs = append(errs, fmt.Errorf("--node-ip %q is not an IP address", o.nodeIP))
	}
	if net.ParseIP(o.address) == nil {
		errs = append(errs, fmt.Errorf("--address %q is not an IP address", o.address))
	}
	if o.port < 1 || o.port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not a valid port", o.port))
	}
	if o.healthzPort < 0 || o.healthzPort > 65535 {
		errs = append(errs, fmt.Errorf("--healthz-port %d is not a valid port", o.healthzPort))
	}
	if (o.tlsCertFile == "") != (o.tlsPrivateKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-private-key-file go together"))
	}
	if o.authorizationMode != auth.ModeWebhook && o.authorizationMode != auth.ModeAlwaysAllow {
		errs = append(errs, fmt.Errorf("--authorization-mode %q is not one of %s, %s", o.authorizationMode, auth.ModeWebhook, auth.ModeAlwaysAllow))
	}
	if o.clientCAFile == "" && !o.tokenWebhook && !o.anonymousAuth {
		errs = append(errs, errors.New("no authentication: set --client-ca-file, --authentication-token-webhook or --anonymous-auth"))
	}
	if !strings.HasPrefix(o.containerRuntimeEndpoint, "unix://") {
		errs = append(errs, fmt.Errorf("--container-runtime-endpoint %q must be a unix:// endpoint", o.containerRuntimeEndpoint))
	}
	for name, d := range map[string]time.Duration{
		"--runtime-request-timeout":      o.runtimeRequestTimeout,
		"--image-pull-timeout":           o.imagePullTimeout,
		"--node-status-update-frequency": o.nodeStatusUpdateFreq,
		"--node-status-report-frequency": o.nodeStatusReportFreq,
		"--sync-frequency":               o.syncFrequency,
		"--relist-period":                o.relistPeriod,
		"--relist-period-without-events": o.relistPeriodNoEvents,
		"--cache-sync-timeout":           o.cacheSyncTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	for name, d := range map[string]time.Duration{
		"--authentication-token-webhook-cache-ttl":       o.tokenWebhookCacheTTL,
		"--authorization-webhook-cache-authorized-ttl":   o.authzAuthorizedTTL,
		"--authorization-webhook-cache-unauthorized-ttl": o.authzUnauthorizedTTL,
		"--eviction-pressure-transition-period":          o.evictionPressurePeriod,
	} {
		// 0 turns a cache off.
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	if o.kubeAPIQPS < 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must not be negative, got %d", o.kubeAPIQPS))
	}
	if o.kubeAPIBurst < 0 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must not be negative, got %d", o.kubeAPIBurst))
	}
	if o.nodeLeaseDurationSeconds <= 0 {
		errs = append(errs, fmt.Errorf("--node-lease-duration-seconds must be positive, got %d", o.nodeLeaseDurationSeconds))
	}
	for name, n := range map[string]int{
		"--pod-sync-workers":      o.podSyncWorkers,
		"--status-update-workers": o.statusUpdateWorkers,
	} {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, n))
		}
	}
	if o.nodeStatusMaxImages < -1 {
		errs = append(errs, fmt.Errorf("--node-status-max-images must be -1 or more, got %d", o.nodeStatusMaxImages))
	}
	if _, err := parseReserved("--kube-reserved", o.kubeReserved); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseReserved("--system-reserved", o.systemReserved); err != nil {
		errs = append(errs, err)
	}
	if _, err := node.ParseThresholds(o.evictionHard); err != nil {
		errs = append(errs, fmt.Errorf("--eviction-hard: %w", err))
	}
	if _, err := cm.ParseDriver(o.cgroupDriver); err != nil {
		errs = append(errs, fmt.Errorf("--cgroup-driver: %w", err))
	}
	if o.cgroupsPerQOS && o.cgroupRoot == "" {
		errs = append(errs, errors.New("--cgroups-per-qos needs a --cgroup-root"))
	}
	if o.maxPods <= 0 {
		errs = append(errs, fmt.Errorf("--max-pods must be positive, got %d", o.maxPods))
	}
	return errors.Join(errs...)
}

// reservableResources are the resources --kube-reserved and
// --system-reserved accept, as the kubelet's.
var reservableResources = map[v1.ResourceName]bool{
	v1.ResourceCPU: true, v1.ResourceMemory: true, v1.ResourceEphemeralStorage: true, "pid": true,
}

// reservations returns what --kube-reserved, --system-reserved and
// --eviction-hard keep from the node's allocatable; validate has refused
// values that do not parse.
func (o *options) reservations() (kubeReserved, systemReserved v1.ResourceList, evictionHard []node.Threshold) {
	kubeReserved, _ = parseReserved("--kube-reserved", o.kubeReserved)
	systemReserved, _ = parseReserved("--system-reserved", o.systemReserved)
	evictionHard, _ = node.ParseThresholds(o.evictionHard)
	return kubeReserved, systemReserved, evictionHard
}

// parseReserved turns the resource=quantity pairs of the flag named flag into
// a resource list, refusing unknown resources and negative or malformed
// quantities.
func parseReserved(flag string, m map[string]string) (v1.ResourceList, error) {
	out := v1.ResourceList{}
	var errs []error
	for k, v := range m {
		name := v1.ResourceName(strings.TrimSpace(k))
		if !reservableResources[name] {
			errs = append(errs, fmt.Errorf("%s: cannot reserve %q, only cpu, memory, ephemeral-storage and pid", flag, k))
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s=%q: %w", flag, k, v, err))
			continue
		}
		if q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("%s: %s=%s must not be negative", flag, k, v))
			continue
		}
		out[name] = q
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func firstIPv4() (net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses for --node-ip: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP, nil
		}
	}
	return nil, errors.New("no non-loopback IPv4 address found: set --node-ip")
}
