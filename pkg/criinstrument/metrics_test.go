package criinstrument

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

func TestRuntimeServiceCountsOperationsAndErrors(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	fake := critest.NewFakeRuntimeService()
	rs := m.RuntimeService(fake)

	for range 2 {
		if _, err := rs.Version(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	fake.InjectError("Version", errors.New("runtime down"))
	if _, err := rs.Version(ctx, "v1"); err == nil {
		t.Fatal("Version: want the injected error, got none")
	}
	if _, err := rs.ListPodSandbox(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The streaming requests pass through: the caller gets the runtime's
	// URL.
	if resp, err := rs.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "c"}); err != nil || resp == nil {
		t.Fatalf("Exec = %v, %v; want a response", resp, err)
	}
	if resp, err := rs.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "c"}); err != nil || resp == nil {
		t.Fatalf("Attach = %v, %v; want a response", resp, err)
	}
	if resp, err := rs.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "p"}); err != nil || resp == nil {
		t.Fatalf("PortForward = %v, %v; want a response", resp, err)
	}
	fake.InjectError("StartContainer", errors.New("no such container"))
	if err := rs.StartContainer(ctx, "missing"); err == nil {
		t.Fatal("StartContainer: want the injected error, got none")
	}
	if err := fake.AssertCalls([]string{"Version", "Version", "Version", "ListPodSandbox", "Exec", "Attach", "PortForward", "StartContainer"}); err != nil {
		t.Fatalf("calls did not reach the runtime: %v", err)
	}

	for _, tc := range []struct {
		op        string
		ops, errs float64
	}{
		{"version", 3, 1},
		{"list_podsandbox", 1, 0},
		{"exec", 1, 0},
		{"attach", 1, 0},
		{"port_forward", 1, 0},
		{"start_container", 1, 1},
		{"create_container", 0, 0},
	} {
		if got := testutil.ToFloat64(m.ops.WithLabelValues(tc.op)); got != tc.ops {
			t.Errorf("kubelet_runtime_operations_total{operation_type=%q} = %v, want %v", tc.op, got, tc.ops)
		}
		if got := testutil.ToFloat64(m.errs.WithLabelValues(tc.op)); got != tc.errs {
			t.Errorf("kubelet_runtime_operations_errors_total{operation_type=%q} = %v, want %v", tc.op, got, tc.errs)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "kubelet_runtime_operations_duration_seconds"); err != nil || n != 6 {
		t.Errorf("duration series = %d, %v; want 6 (one per operation called)", n, err)
	}
}

func TestImageServiceCountsOperationsAndErrors(t *testing.T) {
	ctx := context.Background()
	m := NewMetrics(prometheus.NewPedanticRegistry())
	fake := critest.NewFakeImageService()
	is := m.ImageService(fake)

	if _, err := is.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fake.InjectError("PullImage", errors.New("manifest unknown"))
	if _, err := is.PullImage(ctx, &runtimeapi.ImageSpec{Image: "nope"}, nil, nil); err == nil {
		t.Fatal("PullImage: want the injected error, got none")
	}
	fake.InjectError("ImageFsInfo", errors.New("statfs failed"))
	if _, err := is.ImageFsInfo(ctx); err == nil {
		t.Fatal("ImageFsInfo: want the runtime's error returned, got none")
	}
	if _, err := is.ListImages(ctx, nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		op        string
		ops, errs float64
	}{
		{"pull_image", 2, 1},
		{"image_fs_info", 1, 1},
		{"list_images", 1, 0},
	} {
		if got := testutil.ToFloat64(m.ops.WithLabelValues(tc.op)); got != tc.ops {
			t.Errorf("kubelet_runtime_operations_total{operation_type=%q} = %v, want %v", tc.op, got, tc.ops)
		}
		if got := testutil.ToFloat64(m.errs.WithLabelValues(tc.op)); got != tc.errs {
			t.Errorf("kubelet_runtime_operations_errors_total{operation_type=%q} = %v, want %v", tc.op, got, tc.errs)
		}
	}
}

func TestNilMetricsAndRegisterer(t *testing.T) {
	fake := critest.NewFakeRuntimeService()
	var m *Metrics
	if rs := m.RuntimeService(fake); rs != fake {
		t.Errorf("nil Metrics wrapped the runtime service: %T", rs)
	}
	img := critest.NewFakeImageService()
	if is := m.ImageService(img); is != img {
		t.Errorf("nil Metrics wrapped the image service: %T", is)
	}
	// A nil registerer records into metrics nobody gathers.
	rs := NewMetrics(nil).RuntimeService(fake)
	if _, err := rs.Status(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}
