package volume

import (
	v1 "k8s.io/api/core/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// containerResourceValue returns the value of a downwardAPI volume's
// resourceFieldRef. As in the kubelet's volume path, which differs from its
// env path, a missing cpu, memory or ephemeral-storage limit reads as the
// node's allocatable amount, for init containers too, and pod-level limits
// are not consulted.
func containerResourceValue(sel *v1.ResourceFieldSelector, pod *v1.Pod, nodeAllocatable v1.ResourceList) (string, error) {
	c, _, err := criconfig.FindContainer(pod, sel.ContainerName)
	if err != nil {
		return "", err
	}
	res := c.Resources
	res.Limits = criconfig.DefaultLimits(res.Limits, nodeAllocatable)
	return criconfig.ResourceFieldValue(sel, res)
}

// aggregate joins errors the way the kubelet reports several at once
// ("[a, b]"), and returns a single error unchanged.
func aggregate(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return utilerrors.NewAggregate(errs)
}
