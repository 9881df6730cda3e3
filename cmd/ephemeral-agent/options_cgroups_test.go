package main

import (
	"strings"
	"testing"
)

func TestCgroupFlags(t *testing.T) {
	valid := []string{"--kubeconfig=k", "--node-name=n", "--node-ip=127.0.0.1"}
	o := parse(t, valid...)
	// The kubelet's defaults.
	if !o.cgroupsPerQOS || o.cgroupRoot != "/" || o.cgroupDriver != "cgroupfs" || o.podMaxPids != -1 {
		t.Errorf("defaults = per-qos %v root %q driver %q pod-max-pids %d", o.cgroupsPerQOS, o.cgroupRoot, o.cgroupDriver, o.podMaxPids)
	}
	if err := o.validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cgroup-driver=systemd", "--cgroup-root=/ea-e2e", "--pod-max-pids=1024"}, ""},
		{[]string{"--cgroups-per-qos=false", "--cgroup-root="}, ""},
		{[]string{"--cgroup-driver=docker"}, `--cgroup-driver: cgroup driver "docker" is not one of cgroupfs, systemd`},
		{[]string{"--cgroup-root="}, "--cgroups-per-qos needs a --cgroup-root"},
	} {
		err := parse(t, append(valid, tc.args...)...).validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
