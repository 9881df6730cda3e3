package images

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestDefaultPullPolicy(t *testing.T) {
	hex64 := strings.Repeat("12", 32)
	tests := []struct {
		image string
		want  v1.PullPolicy
	}{
		{"busybox", v1.PullAlways},
		{"busybox:latest", v1.PullAlways},
		{"busybox:1.36", v1.PullIfNotPresent},
		{"localhost:5000/foo", v1.PullAlways},
		{"foo@sha256:" + hex64, v1.PullIfNotPresent},
		{"foo:latest@sha256:" + hex64, v1.PullAlways},
	}
	for _, tt := range tests {
		n, err := parseImageName(tt.image)
		if err != nil {
			t.Fatalf("%s: %v", tt.image, err)
		}
		if got := defaultPullPolicy(n); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		policy       v1.PullPolicy
		present      bool
		wantPresence bool
		want         action
	}{
		{v1.PullAlways, true, false, actionPull},
		{v1.PullAlways, false, false, actionPull},
		{v1.PullIfNotPresent, true, true, actionUsePresent},
		{v1.PullIfNotPresent, false, true, actionPull},
		{v1.PullNever, true, true, actionUsePresent},
		{v1.PullNever, false, true, actionNeverPull},
		// Unknown policies pull, as in the kubelet (validation rejects them).
		{"Sometimes", true, false, actionPull},
	}
	for _, tt := range tests {
		if got := needsPresence(tt.policy); got != tt.wantPresence {
			t.Errorf("needsPresence(%s) = %v, want %v", tt.policy, got, tt.wantPresence)
		}
		if got := decide(tt.policy, tt.present); got != tt.want {
			t.Errorf("decide(%s, present=%v) = %v, want %v", tt.policy, tt.present, got, tt.want)
		}
	}
}
