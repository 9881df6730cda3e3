package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeRuntime answers Status with a settable health.
type fakeRuntime struct {
	mu     sync.Mutex
	status *runtimeapi.RuntimeStatus
	err    error
}

func (f *fakeRuntime) set(s *runtimeapi.RuntimeStatus, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.err = s, err
}

func (f *fakeRuntime) Version(context.Context, string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "1.6.20"}, nil
}

func (f *fakeRuntime) Status(context.Context, bool) (*runtimeapi.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &runtimeapi.StatusResponse{Status: f.status}, nil
}

// fakeImages answers ListImages with a settable list.
type fakeImages struct {
	mu   sync.Mutex
	imgs []*runtimeapi.Image
	err  error
}

func (f *fakeImages) set(imgs []*runtimeapi.Image, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imgs, f.err = imgs, err
}

func (f *fakeImages) ListImages(context.Context, *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.imgs, f.err
}

func testConfig() Config {
	return Config{
		NodeName:              "node-a",
		Hostname:              "host-a",
		NodeIP:                net.ParseIP("127.0.0.1"),
		Port:                  10250,
		KubeletVersion:        "v1.37.2",
		AgentVersion:          "v0.1.0",
		MaxImages:             DefaultMaxImages,
		Labels:                map[string]string{"example.com/pool": "debug"},
		StatusUpdateFrequency: time.Second,
		StatusReportFrequency: time.Minute,
		LeaseDuration:         40 * time.Second,
		RuntimeStatusTimeout:  time.Second,
	}
}

var testMachine = MachineInfo{
	BootID: "boot", KernelVersion: "6.1", OSImage: "Debian",
	Capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourcePods: resource.MustParse("110")},
}

func TestRegisterCreatesNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	c := NewController(testConfig(), client, rt, &fakeImages{}, testMachine, clocktesting.NewFakeClock(time.Now()))
	c.observeRuntime(ctx)

	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[v1.LabelHostname] != "host-a" || n.Labels["example.com/pool"] != "debug" || n.Labels[v1.LabelOSStable] == "" {
		t.Errorf("labels = %v", n.Labels)
	}
	if r := findCondition(n.Status.Conditions, v1.NodeReady); r == nil || r.Status != v1.ConditionTrue {
		t.Errorf("Ready = %+v, want True", r)
	}
	if n.Status.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" || n.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("nodeInfo = %+v", n.Status.NodeInfo)
	}
	if n.Annotations[VersionAnnotation] != "v0.1.0" {
		t.Errorf("annotations = %v, want %s=v0.1.0", n.Annotations, VersionAnnotation)
	}
	if n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("daemon port = %d", n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}
	if len(n.Status.Addresses) != 2 || n.Status.Addresses[0] != (v1.NodeAddress{Type: v1.NodeInternalIP, Address: "127.0.0.1"}) {
		t.Errorf("addresses = %v", n.Status.Addresses)
	}
	if q := n.Status.Allocatable[v1.ResourcePods]; q.Value() != 110 {
		t.Errorf("allocatable pods = %v", q)
	}
}

func TestRegisterAdoptsExistingNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	existing := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-1", Labels: map[string]string{"keep": "me"}}}
	client := fake.NewClientset(existing)
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	c := NewController(testConfig(), client, rt, &fakeImages{}, testMachine, clocktesting.NewFakeClock(time.Now()))
	c.observeRuntime(ctx)

	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.UID != "uid-1" {
		t.Errorf("node replaced: uid %s", n.UID)
	}
	if n.Labels["keep"] != "me" || n.Labels[v1.LabelHostname] != "host-a" {
		t.Errorf("labels = %v, want the existing ones plus the agent's", n.Labels)
	}
	if n.Annotations[VersionAnnotation] != "v0.1.0" {
		t.Errorf("annotations = %v, want %s=v0.1.0", n.Annotations, VersionAnnotation)
	}
	if r := findCondition(n.Status.Conditions, v1.NodeReady); r == nil || r.Status != v1.ConditionTrue {
		t.Errorf("Ready = %+v, want True", r)
	}
}

func TestSyncStatusFollowsRuntime(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	clk := clocktesting.NewFakeClock(time.Now())
	c := NewController(testConfig(), client, rt, &fakeImages{}, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	patches := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	readyOf := func() *v1.NodeCondition {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return findCondition(n.Status.Conditions, v1.NodeReady)
	}

	before := patches()
	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches() != before {
		t.Error("an unchanged status was patched before the report interval")
	}

	rt.set(nil, errors.New("connection refused"))
	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if r := readyOf(); r.Status != v1.ConditionFalse || r.Reason != "KubeletNotReady" {
		t.Errorf("Ready with the runtime down = %+v", r)
	}

	rt.set(runtimeStatus(true, true), nil)
	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if r := readyOf(); r.Status != v1.ConditionTrue {
		t.Errorf("Ready after the runtime returned = %+v", r)
	}

	before = patches()
	clk.Step(time.Minute)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if patches() != before+1 {
		t.Error("no status patch after the report interval")
	}
}

// TestSyncStatusRestoresConditionsChangedByOthers: the node lifecycle
// controller marks Ready Unknown after it missed heartbeats (an API server
// outage); the agent, whose own view did not change, puts Ready back to
// True at its next period, not at the report interval.
func TestSyncStatusRestoresConditionsChangedByOthers(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	clk := clocktesting.NewFakeClock(time.Now())
	c := NewController(testConfig(), client, rt, &fakeImages{}, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := findCondition(n.Status.Conditions, v1.NodeReady)
	if ready == nil || ready.Status != v1.ConditionTrue {
		t.Fatalf("Ready after registration = %+v", ready)
	}
	ready.Status, ready.Reason, ready.Message = v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	n, err = client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := findCondition(n.Status.Conditions, v1.NodeReady); r.Status != v1.ConditionTrue || r.Reason != "KubeletReady" {
		t.Errorf("Ready one period after the controller marked it Unknown = %+v, want True KubeletReady", r)
	}
}

func TestSyncStatusReregistersDeletedNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	clk := clocktesting.NewFakeClock(time.Now())
	c := NewController(testConfig(), client, rt, &fakeImages{}, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{}); err != nil {
		t.Errorf("node not registered again: %v", err)
	}
}

func TestLeaseOwnedByNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-1"}})
	c := NewController(testConfig(), client, &fakeRuntime{status: runtimeStatus(true, true)}, &fakeImages{}, testMachine, clocktesting.NewFakeClock(time.Now()))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.newLeaseController(ctx).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l, err := client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "node-a", metav1.GetOptions{})
		if err == nil {
			if *l.Spec.HolderIdentity != "node-a" || *l.Spec.LeaseDurationSeconds != 40 {
				t.Errorf("lease spec = %+v", l.Spec)
			}
			if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != "uid-1" || l.OwnerReferences[0].Kind != "Node" {
				t.Errorf("lease owners = %v", l.OwnerReferences)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("lease not created")
}

func TestSyncStatusReportsImages(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	rt := &fakeRuntime{status: runtimeStatus(true, true)}
	imgs := &fakeImages{imgs: []*runtimeapi.Image{{Id: "sha256:a", RepoTags: []string{"localhost/busybox:test"}, Size: 1000}}}
	clk := clocktesting.NewFakeClock(time.Now())
	c := NewController(testConfig(), client, rt, imgs, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	imagesOf := func() []v1.ContainerImage {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Status.Images
	}
	if got := imagesOf(); len(got) != 1 || got[0].Names[0] != "localhost/busybox:test" || got[0].SizeBytes != 1000 {
		t.Errorf("images = %v", got)
	}

	// A new image is reported at the next update, before the report interval.
	imgs.set(append(imgs.imgs, &runtimeapi.Image{Id: "sha256:b", RepoTags: []string{"example.com/big:1"}, Size: 5000}), nil)
	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if got := imagesOf(); len(got) != 2 || got[0].Names[0] != "example.com/big:1" {
		t.Errorf("images after a pull = %v, want the new one first", got)
	}

	// A failed list keeps the last one.
	imgs.set(nil, errors.New("unavailable"))
	clk.Step(time.Second)
	c.observeRuntime(ctx)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if got := imagesOf(); len(got) != 2 {
		t.Errorf("images after a failed list = %v, want the last list", got)
	}
}

func TestAllocatableReported(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	cfg := testConfig()
	cfg.KubeReserved = v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}
	cfg.SystemReserved = v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")}
	cfg.EvictionHard = []Threshold{{Signal: SignalMemoryAvailable, Quantity: ptrQ("100Mi")}}
	m := testMachine
	m.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
	c := NewController(cfg, client, &fakeRuntime{status: runtimeStatus(true, true)}, &fakeImages{}, m, clocktesting.NewFakeClock(time.Now()))
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cpu, mem := n.Status.Allocatable[v1.ResourceCPU], n.Status.Allocatable[v1.ResourceMemory]
	if cpu.MilliValue() != 1900 || mem.Value() != 4<<30-1<<30-100<<20 {
		t.Errorf("allocatable = %v", n.Status.Allocatable)
	}
	if c := n.Status.Capacity[v1.ResourceMemory]; c.Value() != 4<<30 {
		t.Errorf("capacity memory = %v", c.String())
	}
}

func ptrQ(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

// conditionSource is a ConditionSource whose conditions a test sets.
type conditionSource struct {
	mu sync.Mutex
	cs []v1.NodeCondition
}

func (s *conditionSource) set(cs ...v1.NodeCondition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cs = cs
}

func (s *conditionSource) NodeConditions() []v1.NodeCondition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cs
}

// TestSyncStatusReportsSourceConditions: a source's condition is absent
// while it gives none, reported at the next status update once it does (not
// at the report interval), and a change of it is sent too.
func TestSyncStatusReportsSourceConditions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Now())
	src := &conditionSource{}
	cfg := testConfig()
	cfg.Conditions = []ConditionSource{src}
	c := NewController(cfg, client, &fakeRuntime{status: runtimeStatus(true, true)}, &fakeImages{}, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	const typ v1.NodeConditionType = "ExampleCondition"
	condition := func() *v1.NodeCondition {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if findCondition(n.Status.Conditions, v1.NodeReady) == nil {
			t.Error("no Ready condition beside the source's")
		}
		return findCondition(n.Status.Conditions, typ)
	}
	if got := condition(); got != nil {
		t.Fatalf("condition before the source gave one = %+v", got)
	}
	for _, want := range []v1.NodeCondition{
		{Type: typ, Status: v1.ConditionTrue, Reason: "Fine", Message: "all good"},
		{Type: typ, Status: v1.ConditionFalse, Reason: "Broken", Message: "not good"},
	} {
		src.set(want)
		clk.Step(time.Second)
		if err := c.syncStatus(ctx); err != nil {
			t.Fatal(err)
		}
		got := condition()
		if got == nil || got.Status != want.Status || got.Reason != want.Reason || got.Message != want.Message {
			t.Errorf("condition = %+v, want %s/%s/%q", got, want.Status, want.Reason, want.Message)
		}
	}
}

// TestSyncStatusRemovesRemovedConditions: a condition an earlier run
// reported, of a type this configuration does not report, goes at the next
// status update; other components' conditions stay.
func TestSyncStatusRemovesRemovedConditions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const (
		removed v1.NodeConditionType = "ExampleCondition"
		others  v1.NodeConditionType = "OtherComponentCondition"
	)
	client := fake.NewClientset(&v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Status: v1.NodeStatus{Conditions: []v1.NodeCondition{
			{Type: removed, Status: v1.ConditionTrue, Reason: "Fine"},
			{Type: others, Status: v1.ConditionTrue, Reason: "Theirs"},
		}},
	})
	clk := clocktesting.NewFakeClock(time.Now())
	cfg := testConfig()
	cfg.RemovedConditions = []v1.NodeConditionType{removed}
	c := NewController(cfg, client, &fakeRuntime{status: runtimeStatus(true, true)}, &fakeImages{}, testMachine, clk)
	c.observeRuntime(ctx)
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	// The condition comes back behind the agent's back.
	n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []v1.NodeConditionType{removed, others} {
		if (findCondition(n.Status.Conditions, typ) == nil) != (typ == removed) {
			t.Errorf("after registration: %s present = %v", typ, typ != removed)
		}
	}
	n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: removed, Status: v1.ConditionTrue})
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	if err := c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err = client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if findCondition(n.Status.Conditions, removed) != nil {
		t.Errorf("%s still on the Node at the next status update", removed)
	}
}
