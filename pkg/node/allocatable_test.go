package node

import (
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestParseThresholds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string // signal -> quantity or percentage
		wantErr string
	}{
		{in: "", want: map[string]string{}},
		{in: DefaultEvictionHard, want: map[string]string{
			SignalMemoryAvailable: "100Mi", SignalNodeFsAvailable: "10%", SignalImageFsAvailable: "15%", SignalNodeFsInodesFree: "5%"}},
		{in: " memory.available < 1Gi ,pid.available<0%", want: map[string]string{SignalMemoryAvailable: "1Gi", SignalPIDAvailable: "0%"}},
		{in: "memory.available>1Gi", wantErr: "only operator"},
		{in: "memory.free<1Gi", wantErr: "unknown eviction signal"},
		{in: "memory.available<1Gi,memory.available<2Gi", wantErr: "given twice"},
		{in: "nodefs.available<110%", wantErr: "between 0% and 100%"},
		{in: "nodefs.available<-1%", wantErr: "between 0% and 100%"},
		{in: "memory.available<-1Gi", wantErr: "must not be negative"},
		{in: "memory.available<lots", wantErr: "quantities must match"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseThresholds(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("thresholds = %+v, want %v", got, tc.want)
			}
			for _, th := range got {
				w := tc.want[th.Signal]
				var s string
				if th.Quantity != nil {
					s = th.Quantity.String()
				} else {
					s = strconv.FormatFloat(th.Percentage*100, 'g', 6, 64) + "%"
				}
				if s != w {
					t.Errorf("%s = %s, want %s", th.Signal, s, w)
				}
			}
		})
	}
}

func TestAllocatable(t *testing.T) {
	gi := func(n int64) resource.Quantity { return *resource.NewQuantity(n<<30, resource.BinarySI) }
	capacity := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse("4"),
		v1.ResourceMemory:           gi(8),
		v1.ResourceEphemeralStorage: gi(100),
		v1.ResourcePods:             resource.MustParse("110"),
	}
	def, err := ParseThresholds(DefaultEvictionHard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                   string
		kube, system           v1.ResourceList
		eviction               []Threshold
		cpuMilli, mem, storage int64
	}{
		{"nothing reserved", nil, nil, nil, 4000, 8 << 30, 100 << 30},
		{"kubelet defaults", nil, nil, def, 4000, 8<<30 - 100<<20, 90 << 30},
		{"reserved and evicted", v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("100Mi")},
			v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: gi(1), v1.ResourceEphemeralStorage: gi(10), "pid": resource.MustParse("1000")},
			def, 3400, 8<<30 - 200<<20 - 1<<30, 80 << 30},
		{"never below zero", v1.ResourceList{v1.ResourceCPU: resource.MustParse("5"), v1.ResourceMemory: gi(8)}, nil,
			[]Threshold{{Signal: SignalNodeFsAvailable, Percentage: 1}}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Allocatable(capacity, tc.kube, tc.system, tc.eviction)
			cpu, mem, st, pods := got[v1.ResourceCPU], got[v1.ResourceMemory], got[v1.ResourceEphemeralStorage], got[v1.ResourcePods]
			if cpu.MilliValue() != tc.cpuMilli || mem.Value() != tc.mem || st.Value() != tc.storage || pods.Value() != 110 {
				t.Errorf("allocatable = cpu %s memory %d storage %d pods %s, want cpu %dm memory %d storage %d pods 110",
					cpu.String(), mem.Value(), st.Value(), pods.String(), tc.cpuMilli, tc.mem, tc.storage)
			}
			if _, ok := got["pid"]; ok {
				t.Error("a reservation of a resource without capacity became allocatable")
			}
		})
	}
	if q := capacity[v1.ResourceMemory]; q.Value() != 8<<30 {
		t.Errorf("capacity modified: %v", q.String())
	}
}
