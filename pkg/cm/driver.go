package cm

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// RuntimeConfigGetter is the CRI call that tells the runtime's cgroup
// driver (cri-client's RuntimeService has it).
type RuntimeConfigGetter interface {
	RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error)
}

// ResolveDriver returns the cgroup driver to use, as the kubelet decides
// it: the runtime's, where its RuntimeConfig tells; the flag's where the
// runtime does not implement the call (containerd before 1.7). explicit
// says the flag was given, so that a runtime that overrides it is logged.
// Any other error of the call is returned.
func ResolveDriver(ctx context.Context, rt RuntimeConfigGetter, flag Driver, explicit bool) (Driver, error) {
	logger := klog.FromContext(ctx)
	resp, err := rt.RuntimeConfig(ctx)
	if status.Code(err) == codes.Unimplemented {
		logger.Info("The container runtime does not tell its cgroup driver; using --cgroup-driver", "cgroupDriver", flag)
		return flag, nil
	}
	if err != nil {
		return "", err
	}
	d, ok := driverFromCRI(resp)
	if !ok {
		logger.Info("The container runtime's config has no cgroup driver; using --cgroup-driver", "cgroupDriver", flag)
		return flag, nil
	}
	if explicit && d != flag {
		logger.Info("The container runtime's cgroup driver overrides --cgroup-driver", "cgroupDriver", d, "flag", flag)
	} else {
		logger.Info("Using the container runtime's cgroup driver", "cgroupDriver", d)
	}
	return d, nil
}

func driverFromCRI(resp *runtimeapi.RuntimeConfigResponse) (Driver, bool) {
	if resp.GetLinux() == nil {
		return "", false
	}
	switch resp.GetLinux().GetCgroupDriver() {
	case runtimeapi.CgroupDriver_SYSTEMD:
		return DriverSystemd, true
	case runtimeapi.CgroupDriver_CGROUPFS:
		return DriverCgroupfs, true
	}
	return "", false
}
