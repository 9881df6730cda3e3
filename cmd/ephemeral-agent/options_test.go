package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
)

func parse(t *testing.T, args ...string) *options {
	t.Helper()
	o := defaultOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDefaultsFollowTheKubelet(t *testing.T) {
	o := parse(t)
	if o.port != 10250 || o.healthzPort != 10248 || o.podLogsDir != "/var/log/pods" || o.maxPods != 110 {
		t.Errorf("defaults = port %d healthz %d logs %s maxPods %d", o.port, o.healthzPort, o.podLogsDir, o.maxPods)
	}
	// As the kubelet, except that anonymous requests are refused.
	if o.anonymousAuth || !o.tokenWebhook || o.tokenWebhookCacheTTL != 2*time.Minute ||
		o.authorizationMode != "Webhook" || o.authzAuthorizedTTL != 5*time.Minute || o.authzUnauthorizedTTL != 30*time.Second {
		t.Errorf("auth defaults = anonymous %v webhook %v/%s mode %s ttl %s/%s", o.anonymousAuth, o.tokenWebhook, o.tokenWebhookCacheTTL,
			o.authorizationMode, o.authzAuthorizedTTL, o.authzUnauthorizedTTL)
	}
	if o.debugAuditLog != "" {
		t.Errorf("--debug-audit-log defaults to %q, want none", o.debugAuditLog)
	}
	// Debug control is off by default (issue 14).
	if o.debugTargetPreflight {
		t.Error("--debug-target-preflight defaults to on, want off")
	}
	// The kubelet's --runtime-request-timeout default.
	if o.imagePullTimeout != 2*time.Minute {
		t.Errorf("--image-pull-timeout defaults to %s, want 2m", o.imagePullTimeout)
	}
}

func TestImagePullTimeout(t *testing.T) {
	valid := []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1"}
	o := parse(t, append(valid, "--image-pull-timeout=10m")...)
	if o.imagePullTimeout != 10*time.Minute {
		t.Errorf("--image-pull-timeout=10m parsed as %s", o.imagePullTimeout)
	}
	if err := o.validate(); err != nil {
		t.Errorf("--image-pull-timeout=10m: %v", err)
	}
	for _, v := range []string{"0s", "-1m"} {
		err := parse(t, append(valid, "--image-pull-timeout="+v)...).validate()
		if err == nil || !strings.Contains(err.Error(), "--image-pull-timeout must be positive") {
			t.Errorf("--image-pull-timeout=%s: error %v, want it refused", v, err)
		}
	}
}

func TestCertDirDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--root-dir=/var/lib/ea"}, "/var/lib/ea/pki"},
		{nil, "/var/lib/ephemeral-agent/pki"},
		{[]string{"--root-dir=/var/lib/ea", "--cert-dir=/etc/ea/pki"}, "/etc/ea/pki"},
	} {
		o := parse(t, append([]string{"--node-name=n", "--node-ip=10.0.0.1"}, tc.args...)...)
		if err := o.complete(); err != nil {
			t.Fatal(err)
		}
		if o.certDir != tc.want {
			t.Errorf("%v: cert dir %q, want %q", tc.args, o.certDir, tc.want)
		}
	}
}

func TestNodeNameDefaults(t *testing.T) {
	o := parse(t, "--hostname-override=My-Host", "--node-ip=10.0.0.1")
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	if o.nodeName != "my-host" || o.hostnameOverride != "my-host" {
		t.Errorf("node name %q hostname %q, want my-host for both", o.nodeName, o.hostnameOverride)
	}
	o = parse(t, "--hostname-override=host", "--node-name=node", "--node-ip=10.0.0.1")
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	if o.nodeName != "node" || o.hostnameOverride != "host" {
		t.Errorf("node name %q hostname %q", o.nodeName, o.hostnameOverride)
	}
}

func TestValidate(t *testing.T) {
	valid := []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1", "--tls-cert-file=c", "--tls-private-key-file=k"}
	with := func(extra ...string) []string { return append(append([]string{}, valid...), extra...) }
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"valid", valid, nil},
		{"self-signed certificate", []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1"}, nil},
		{"always allow", with("--authorization-mode=AlwaysAllow", "--anonymous-auth"), nil},
		{"nothing given", []string{"--node-name=n", "--node-ip=127.0.0.1", "--tls-cert-file=c"}, []string{"--kubeconfig is required", "--tls-cert-file and --tls-private-key-file go together"}},
		{"bad auth", with("--authorization-mode=RBAC", "--authentication-token-webhook=false", "--authorization-webhook-cache-authorized-ttl=-1s"),
			[]string{`--authorization-mode "RBAC" is not one of Webhook, AlwaysAllow`, "no authentication: set --client-ca-file",
				"--authorization-webhook-cache-authorized-ttl must not be negative"}},
		{"bad values", append(append([]string{}, valid...), "--port=0", "--node-ip=nope", "--container-runtime-endpoint=tcp://x", "--node-status-update-frequency=0s"),
			[]string{"--port 0", "--node-ip \"nope\"", "unix://", "--node-status-update-frequency must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.args...).validate()
			checkErrors(t, err, tc.wantErr)
		})
	}
}

func TestNodeAllocatableFlags(t *testing.T) {
	valid := []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1"}
	o := parse(t, valid...)
	if o.evictionHard != "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%" ||
		len(o.kubeReserved) != 0 || len(o.systemReserved) != 0 || o.nodeStatusMaxImages != 50 || o.evictionPressurePeriod != 5*time.Minute {
		t.Errorf("defaults = eviction-hard %q kube-reserved %v system-reserved %v max images %d, want the kubelet's",
			o.evictionHard, o.kubeReserved, o.systemReserved, o.nodeStatusMaxImages)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"kubelet format", []string{"--kube-reserved=cpu=100m,memory=100Mi", "--system-reserved=memory=1Gi,ephemeral-storage=1Gi,pid=1000",
			"--eviction-hard=memory.available<500Mi,nodefs.available<5%", "--node-status-max-images=-1"}, nil},
		{"no thresholds", []string{"--eviction-hard="}, nil},
		{"bad reservations", []string{"--kube-reserved=gpu=1,cpu=lots", "--system-reserved=memory=-1Gi"},
			[]string{`--kube-reserved: cannot reserve "gpu"`, `--kube-reserved: cpu="lots"`, "--system-reserved: memory=-1Gi must not be negative"}},
		{"bad thresholds", []string{"--eviction-hard=memory.available>1Gi,nodefs.available<200%"},
			[]string{"--eviction-hard:", "only operator", "between 0% and 100%"}},
		{"bad max images", []string{"--node-status-max-images=-2"}, []string{"--node-status-max-images must be -1 or more"}},
		{"bad transition period", []string{"--eviction-pressure-transition-period=-1s"}, []string{"--eviction-pressure-transition-period must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, append(append([]string{}, valid...), tc.args...)...).validate()
			checkErrors(t, err, tc.wantErr)
		})
	}
}

func TestParseReserved(t *testing.T) {
	got, err := parseReserved("--kube-reserved", map[string]string{"cpu": "100m", "memory": "100Mi", "pid": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	cpu, mem, pid := got[v1.ResourceCPU], got[v1.ResourceMemory], got["pid"]
	if len(got) != 3 || cpu.MilliValue() != 100 || mem.Value() != 100<<20 || pid.Value() != 1000 {
		t.Errorf("parseReserved = %v", got)
	}
}

// checkErrors checks that err holds every one of want, or is nil when want
// is empty.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestKubeAPIFlags(t *testing.T) {
	valid := []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1"}
	// The kubelet's defaults.
	if o := parse(t, valid...); o.kubeAPIQPS != 50 || o.kubeAPIBurst != 100 {
		t.Errorf("defaults = --kube-api-qps %d --kube-api-burst %d, want 50 and 100", o.kubeAPIQPS, o.kubeAPIBurst)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		qps, burst int32
		wantErr    []string
	}{
		{"given", []string{"--kube-api-qps=20", "--kube-api-burst=40"}, 20, 40, nil},
		{"client-go defaults", []string{"--kube-api-qps=0", "--kube-api-burst=0"}, 0, 0, nil},
		{"negative", []string{"--kube-api-qps=-1", "--kube-api-burst=-2"}, -1, -2,
			[]string{"--kube-api-qps must not be negative, got -1", "--kube-api-burst must not be negative, got -2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, append(append([]string{}, valid...), tc.args...)...)
			if o.kubeAPIQPS != tc.qps || o.kubeAPIBurst != tc.burst {
				t.Errorf("%v parsed as qps %d burst %d", tc.args, o.kubeAPIQPS, o.kubeAPIBurst)
			}
			checkErrors(t, o.validate(), tc.wantErr)
		})
	}
}
