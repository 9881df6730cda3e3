package cm

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
)

type fakeRuntimeConfig struct {
	resp *runtimeapi.RuntimeConfigResponse
	err  error
}

func (f fakeRuntimeConfig) RuntimeConfig(context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	return f.resp, f.err
}

func TestResolveDriver(t *testing.T) {
	linux := func(d runtimeapi.CgroupDriver) *runtimeapi.RuntimeConfigResponse {
		return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: d}}
	}
	for _, tc := range []struct {
		name    string
		rt      fakeRuntimeConfig
		flag    Driver
		want    Driver
		wantErr bool
	}{
		{"containerd 1.6: Unimplemented, the flag", fakeRuntimeConfig{err: status.Error(codes.Unimplemented, "unknown method RuntimeConfig")}, DriverSystemd, DriverSystemd, false},
		{"the runtime's systemd wins", fakeRuntimeConfig{resp: linux(runtimeapi.CgroupDriver_SYSTEMD)}, DriverCgroupfs, DriverSystemd, false},
		{"the runtime's cgroupfs wins", fakeRuntimeConfig{resp: linux(runtimeapi.CgroupDriver_CGROUPFS)}, DriverSystemd, DriverCgroupfs, false},
		{"no linux config: the flag", fakeRuntimeConfig{resp: &runtimeapi.RuntimeConfigResponse{}}, DriverCgroupfs, DriverCgroupfs, false},
		{"other errors fail", fakeRuntimeConfig{err: errors.New("connection refused")}, DriverCgroupfs, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			got, err := ResolveDriver(ctx, tc.rt, tc.flag, true)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("= %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
