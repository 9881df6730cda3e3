package admission

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testNode() *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{v1.LabelOSStable: "linux", "disk": "ssd"}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:              resource.MustParse("2"),
			v1.ResourceMemory:           resource.MustParse("1Gi"),
			v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
			v1.ResourcePods:             resource.MustParse("3"),
		}},
	}
}

// pod returns a pod bound to node-1 with one container, changed by opts.
func pod(name string, opts ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       v1.PodSpec{NodeName: "node-1", Containers: []v1.Container{{Name: "app", Image: "busybox"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(rl v1.ResourceList) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Resources.Requests = rl }
}

func hostPortOn(ip string, port int32, proto v1.Protocol) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: 80, HostPort: port, HostIP: ip, Protocol: proto})
	}
}

func TestAdmit(t *testing.T) {
	strict := v1.SupplementalGroupsPolicyStrict
	always := v1.ContainerRestartPolicyAlways
	tainted := testNode()
	tainted.Spec.Taints = []v1.Taint{{Key: "maintenance", Effect: v1.TaintEffectNoExecute}, {Key: "gpu", Effect: v1.TaintEffectNoSchedule}}
	noAlloc := testNode()
	noAlloc.Status.Allocatable = nil
	featured := testNode()
	yes := true
	featured.Status.Features = &v1.NodeFeatures{SupplementalGroupsPolicy: &yes}

	for _, tc := range []struct {
		name       string
		pod        *v1.Pod
		node       *v1.Node
		admitted   []*v1.Pod
		wantReason string
		wantMsg    string
	}{
		{name: "plain pod", pod: pod("a")},
		{name: "os field linux", pod: pod("a", func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: v1.Linux} })},
		{
			name: "os field windows", pod: pod("a", func(p *v1.Pod) { p.Spec.OS = &v1.PodOS{Name: v1.Windows} }),
			wantReason: "PodOSNotSupported", wantMsg: "Failed to admit pod as the OS field doesn't match node OS",
		},
		{
			name: "os label windows", pod: pod("a", func(p *v1.Pod) { p.Labels = map[string]string{v1.LabelOSStable: "windows"} }),
			wantReason: "PodOSSelectorNodeLabelDoesNotMatch", wantMsg: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label",
		},
		{
			name: "os label checked before os field",
			pod: pod("a", func(p *v1.Pod) {
				p.Labels = map[string]string{v1.LabelOSStable: "windows"}
				p.Spec.OS = &v1.PodOS{Name: v1.Windows}
			}),
			wantReason: "PodOSSelectorNodeLabelDoesNotMatch", wantMsg: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label",
		},
		{
			name: "os node selector windows is node affinity", pod: pod("a", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{v1.LabelOSStable: "windows"} }),
			wantReason: "NodeAffinity", wantMsg: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name:       "strict supplemental groups unsupported",
			pod:        pod("a", func(p *v1.Pod) { p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: &strict} }),
			wantReason: "SupplementalGroupsPolicyNotSupported", wantMsg: "SupplementalGroupsPolicy=Strict is not supported in this node",
		},
		{
			name: "strict supplemental groups supported", node: featured,
			pod: pod("a", func(p *v1.Pod) { p.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: &strict} }),
		},
		{name: "cpu fits", pod: pod("a", requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}))},
		{
			name: "too much cpu", pod: pod("a", requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")})),
			wantReason: "OutOfcpu", wantMsg: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000",
		},
		{
			name: "cpu taken by admitted pods", pod: pod("a", requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")})),
			admitted:   []*v1.Pod{pod("b", requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse("1600m")}))},
			wantReason: "OutOfcpu", wantMsg: "Node didn't have enough resource: cpu, requested: 500, used: 1600, capacity: 2000",
		},
		{
			name: "too much memory", pod: pod("a", requests(v1.ResourceList{v1.ResourceMemory: resource.MustParse("2Gi")})),
			wantReason: "OutOfmemory", wantMsg: "Node didn't have enough resource: memory, requested: 2147483648, used: 0, capacity: 1073741824",
		},
		{
			name:       "cpu is checked before memory",
			pod:        pod("a", requests(v1.ResourceList{v1.ResourceMemory: resource.MustParse("2Gi"), v1.ResourceCPU: resource.MustParse("3")})),
			wantReason: "OutOfcpu", wantMsg: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000",
		},
		{
			name: "too much ephemeral storage", pod: pod("a", requests(v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse("11Gi")})),
			wantReason: "OutOfephemeral-storage", wantMsg: "Node didn't have enough resource: ephemeral-storage, requested: 11811160064, used: 0, capacity: 10737418240",
		},
		{
			name: "init containers count by their largest", pod: pod("a", func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "init", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2500m")}}}}
			}),
			wantReason: "OutOfcpu", wantMsg: "Node didn't have enough resource: cpu, requested: 2500, used: 0, capacity: 2000",
		},
		{
			name: "too many pods", pod: pod("a"), admitted: []*v1.Pod{pod("b"), pod("c"), pod("d")},
			wantReason: "OutOfpods", wantMsg: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3",
		},
		{
			name: "pods are counted before cpu", pod: pod("a", requests(v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")})),
			admitted:   []*v1.Pod{pod("b"), pod("c"), pod("d")},
			wantReason: "OutOfpods", wantMsg: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3",
		},
		{
			name: "node without allocatable has room for nothing", pod: pod("a"), node: noAlloc,
			wantReason: "OutOfpods", wantMsg: "Node didn't have enough resource: pods, requested: 1, used: 0, capacity: 0",
		},
		{name: "extended resource the node lacks is not checked", pod: pod("a", requests(v1.ResourceList{"example.com/gpu": resource.MustParse("1")}))},
		{
			name: "hugepages the node lacks", pod: pod("a", requests(v1.ResourceList{"hugepages-2Mi": resource.MustParse("2Mi")})),
			wantReason: "OutOfhugepages-2Mi", wantMsg: "Node didn't have enough resource: hugepages-2Mi, requested: 2097152, used: 0, capacity: 0",
		},
		{name: "node selector matches", pod: pod("a", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })},
		{
			name: "node selector does not match", pod: pod("a", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "hdd"} }),
			wantReason: "NodeAffinity", wantMsg: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name: "required node affinity does not match",
			pod: pod("a", func(p *v1.Pod) {
				p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
					NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"node-2"}}}}},
				}}}
			}),
			wantReason: "NodeAffinity", wantMsg: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name: "node name", pod: pod("a", func(p *v1.Pod) { p.Spec.NodeName = "node-2" }),
			wantReason: "NodeName", wantMsg: "Predicate NodeName failed: node(s) didn't match the requested node name",
		},
		{name: "free host port", pod: pod("a", hostPortOn("", 8080, "")), admitted: []*v1.Pod{pod("b", hostPortOn("", 8081, ""))}},
		{name: "same port other protocol", pod: pod("a", hostPortOn("", 8080, v1.ProtocolUDP)), admitted: []*v1.Pod{pod("b", hostPortOn("", 8080, ""))}},
		{name: "same port other IPs", pod: pod("a", hostPortOn("10.0.0.1", 8080, "")), admitted: []*v1.Pod{pod("b", hostPortOn("10.0.0.2", 8080, ""))}},
		{
			name: "host port taken", pod: pod("a", hostPortOn("", 8080, "")), admitted: []*v1.Pod{pod("b", hostPortOn("", 8080, v1.ProtocolTCP))},
			wantReason: "NodePorts", wantMsg: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports",
		},
		{
			name: "host port taken on all addresses", pod: pod("a", hostPortOn("10.0.0.1", 8080, "")), admitted: []*v1.Pod{pod("b", hostPortOn("0.0.0.0", 8080, ""))},
			wantReason: "NodePorts", wantMsg: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports",
		},
		{
			name: "host port of a sidecar taken", pod: pod("a", hostPortOn("", 8080, "")),
			admitted: []*v1.Pod{pod("b", func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "side", RestartPolicy: &always, Ports: []v1.ContainerPort{{ContainerPort: 1, HostPort: 8080}}}}
			})},
			wantReason: "NodePorts", wantMsg: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports",
		},
		{
			name: "host port of an init container is free again", pod: pod("a", hostPortOn("", 8080, "")),
			admitted: []*v1.Pod{pod("b", func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "init", Ports: []v1.ContainerPort{{ContainerPort: 1, HostPort: 8080}}}}
			})},
		},
		{
			name: "untolerated NoExecute taint", pod: pod("a"), node: tainted,
			wantReason: "TaintToleration", wantMsg: "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate",
		},
		{
			name: "tolerated NoExecute taint, NoSchedule ignored", node: tainted,
			pod: pod("a", func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "maintenance", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}}
			}),
		},
		{
			name: "unsupported volume",
			pod: pod("a", func(p *v1.Pod) {
				p.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}}, {Name: "data", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "x"}}}}
			}),
			wantReason: "UnsupportedVolume", wantMsg: `Volume "data" cannot be set up on this node: unsupported: csi`,
		},
		{
			name: "kubelet reasons come before the volume's",
			pod: pod("a", func(p *v1.Pod) {
				p.Spec.OS = &v1.PodOS{Name: v1.Windows}
				p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "x"}}}}
			}),
			wantReason: "PodOSNotSupported", wantMsg: "Failed to admit pod as the OS field doesn't match node OS",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := tc.node
			if node == nil {
				node = testNode()
			}
			volume := func(v *v1.Volume) error {
				if v.CSI != nil {
					return errors.New("unsupported: csi")
				}
				return nil
			}
			got := Admit(context.Background(), Input{Pod: tc.pod, Node: node, Admitted: tc.admitted, OS: "linux", Volume: volume})
			want := Result{Admit: tc.wantReason == "", Reason: tc.wantReason, Message: tc.wantMsg}
			if got != want {
				t.Errorf("Admit() = %+v\nwant       %+v", got, want)
			}
		})
	}
}
