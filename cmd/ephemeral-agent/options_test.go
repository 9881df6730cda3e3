package main

import (
	"strings"
	"testing"

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
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"valid", valid, nil},
		{"nothing given", []string{"--node-name=n", "--node-ip=127.0.0.1"}, []string{"--kubeconfig is required", "--tls-cert-file"}},
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
