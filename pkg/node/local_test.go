package node

import (
	goruntime "runtime"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestLocalNode(t *testing.T) {
	machine := MachineInfo{Capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourcePods: resource.MustParse("110")}}
	c := NewController(Config{NodeName: "n1", Hostname: "h1", KubeReserved: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}},
		nil, nil, nil, machine, clocktesting.NewFakeClock(time.Unix(1000, 0)))
	n := c.LocalNode()
	if n.Name != "n1" || n.Labels[v1.LabelOSStable] != goruntime.GOOS || n.Labels[v1.LabelHostname] != "h1" {
		t.Errorf("LocalNode() meta = %+v", n.ObjectMeta)
	}
	if cpu := n.Status.Allocatable[v1.ResourceCPU]; cpu.MilliValue() != 1500 {
		t.Errorf("allocatable cpu = %s, want 1500m", cpu.String())
	}
	if pods := n.Status.Allocatable[v1.ResourcePods]; pods.Value() != 110 {
		t.Errorf("allocatable pods = %s, want 110", pods.String())
	}
}
