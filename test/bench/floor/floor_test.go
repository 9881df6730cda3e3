package floor

import (
	"context"
	"errors"
	"testing"

	critesting "k8s.io/cri-api/pkg/apis/testing"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
)

const image = "localhost/busybox:test"

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inject  string // CRI call to fail
		images  []string
		wantErr bool
	}{
		{name: "measures and cleans up", images: []string{image}},
		{name: "image missing", images: nil, wantErr: true},
		{name: "start fails, still cleans up", images: []string{image}, inject: "StartContainer", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := critesting.NewFakeRuntimeService()
			img := critesting.NewFakeImageService()
			img.SetFakeImages(tc.images)
			if tc.inject != "" {
				rt.InjectError(tc.inject, errors.New("injected"))
			}
			// A sandbox of an earlier, killed run, and one not ours.
			ctx := context.Background()
			if _, err := rt.RunPodSandbox(ctx, SandboxConfig("old", 0, "", ""), ""); err != nil {
				t.Fatal(err)
			}
			foreign := SandboxConfig("x", 0, "", "")
			foreign.Labels = map[string]string{"app": "other"}
			if _, err := rt.RunPodSandbox(ctx, foreign, ""); err != nil {
				t.Fatal(err)
			}
			res, err := Run(ctx, rt, img, Config{Image: image, Sequential: 4, Concurrent: 6, InFlight: 3, RunID: "r1"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Run error = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				if w := res.Workloads[result.OneRunning]; w.Count != 4 || w.InFlight != 1 || w.Pods != 6 {
					t.Errorf("one at a time = %+v, want 4 samples, 1 in flight, 6 sandboxes", w)
				}
				if w := res.Workloads[result.ConcurrentRunning]; w.Count != 6 || w.InFlight != 3 {
					t.Errorf("concurrent = %+v, want 6 samples, 3 in flight", w)
				}
			}
			left, err := rt.ListPodSandbox(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.images == nil {
				return // nothing created, nothing removed
			}
			if len(left) != 1 || left[0].Labels["app"] != "other" {
				t.Errorf("sandboxes left: %v, want only the foreign one", left)
			}
		})
	}
}
