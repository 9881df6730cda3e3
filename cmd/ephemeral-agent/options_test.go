package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
