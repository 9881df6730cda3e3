package kuberuntime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criapitesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/kuberuntime"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/status"
)

// An embedding node agent provides the sync loop's interfaces. Here they are
// small fakes: a fixed pod source, images that are always present, no
// volumes, and a status sink that prints the ephemeral container statuses
// package status computes.

type onePod struct{ pod *v1.Pod }

func (s onePod) GetPodByUID(uid types.UID) (*v1.Pod, bool) { return s.pod, s.pod.UID == uid }

type presentImages struct{}

func (presentImages) EnsureImage(_ context.Context, _ *v1.ObjectReference, _ *v1.Pod, image string, _ v1.PullPolicy, _ []v1.Secret, _ *runtimeapi.PodSandboxConfig) (string, error) {
	return image, nil
}
func (presentImages) ImageUser(context.Context, string) (*int64, string, error) { return nil, "", nil }
func (presentImages) ForgetPod(types.UID)                                       {}

type noVolumes struct{}

func (noVolumes) SetUp(context.Context, *v1.Pod) (kuberuntime.Mounter, error) { return noMounts{}, nil }
func (noVolumes) TearDown(context.Context, types.UID) error                   { return nil }

type noMounts struct{}

func (noMounts) MountsWithEnv(*v1.Container, map[string]string) ([]*runtimeapi.Mount, error) {
	return nil, nil
}

type noSecrets struct{}

func (noSecrets) ConfigMap(context.Context, string, string) (*v1.ConfigMap, error) { return nil, nil }
func (noSecrets) Secret(context.Context, string, string) (*v1.Secret, error)       { return nil, nil }

type printStatus struct{}

func (printStatus) SetPodStatus(pod *v1.Pod, state *podstate.PodState, waiting map[podstate.ContainerKey]podstate.Waiting) {
	s := status.Compute(pod, state, waiting, status.NodeInfo{HostIPs: []string{"10.0.0.1"}}, time.Time{})
	for _, c := range s.EphemeralContainerStatuses {
		switch {
		case c.State.Running != nil:
			fmt.Printf("%s: running\n", c.Name)
		case c.State.Waiting != nil:
			fmt.Printf("%s: waiting (%s)\n", c.Name, c.State.Waiting.Reason)
		}
	}
}
func (printStatus) DeletePod(context.Context, *v1.Pod) error { return nil }
func (printStatus) ForgetPod(types.UID)                      {}

type noEvents struct{}

func (noEvents) Eventf(runtime.Object, string, string, string, ...interface{}) {}

// Example drives one pod through two syncs with a fake CRI runtime: the
// first creates the sandbox and the app, the second starts the ephemeral
// debug container added in between, in the app's PID namespace. A third
// sync starts nothing: an ephemeral container starts exactly once.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "kuberuntime-example")
	defer os.RemoveAll(dir)
	rt := criapitesting.NewFakeRuntimeService()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyAlways,
			Containers:    []v1.Container{{Name: "app", Image: "localhost/distroless-app:test"}},
		},
	}
	syncer := kuberuntime.NewSyncer(kuberuntime.Config{PodLogsDir: filepath.Join(dir, "logs"), RootDir: dir}, kuberuntime.Deps{
		Runtime:  rt,
		Pods:     onePod{pod},
		Images:   presentImages{},
		Volumes:  noVolumes{},
		Secrets:  noSecrets{},
		Status:   printStatus{},
		Recorder: noEvents{},
		Clock:    clocktesting.NewFakeClock(time.Now()),
	})

	if _, err := syncer.SyncPod(ctx, pod.UID); err != nil {
		fmt.Println("sync:", err)
	}
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger", Image: "localhost/busybox:test"},
		TargetContainerName:      "app",
	}}
	for range 2 {
		if _, err := syncer.SyncPod(ctx, pod.UID); err != nil {
			fmt.Println("sync:", err)
		}
	}

	containers, _ := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{criconfig.LabelContainerName: "debugger"}})
	fmt.Println("debugger containers in the runtime:", len(containers))
	// Output:
	// debugger: running
	// debugger: running
	// debugger containers in the runtime: 1
}
