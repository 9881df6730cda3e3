package targetcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2/ktesting"
)

// fakeRuntime is the CRI fake with what the check reads besides: the
// process IDs of containers by name (in the verbose status, as containerd
// reports them) and the runtime's verbose status info. It keeps the
// configs the containers were created with, to check the debugger's
// namespace options (the fake itself ignores them).
type fakeRuntime struct {
	*critesting.FakeRuntimeService
	pids       map[string]int
	statusInfo map[string]string
	configs    map[string]*runtimeapi.ContainerConfig
	// sandboxLost: RunPodSandbox makes the sandbox and returns an error,
	// as a call that timed out after the runtime acted.
	sandboxLost bool
}

func (f *fakeRuntime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	id, err := f.FakeRuntimeService.RunPodSandbox(ctx, config, handler)
	if err == nil && f.sandboxLost {
		return "", context.DeadlineExceeded
	}
	return id, err
}

func newFakeRuntime(pids map[string]int) *fakeRuntime {
	return &fakeRuntime{
		FakeRuntimeService: critesting.NewFakeRuntimeService(),
		pids:               pids,
		statusInfo:         map[string]string{"config": `{"sandboxImage":"localhost/pause:test"}`},
		configs:            map[string]*runtimeapi.ContainerConfig{},
	}
}

func (f *fakeRuntime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	resp, err := f.FakeRuntimeService.Status(ctx, verbose)
	if err != nil {
		return nil, err
	}
	resp.Info = f.statusInfo
	return resp, nil
}

func (f *fakeRuntime) CreateContainer(ctx context.Context, sandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	id, err := f.FakeRuntimeService.CreateContainer(ctx, sandboxID, config, sandboxConfig)
	if err == nil {
		f.configs[config.GetMetadata().GetName()] = config
	}
	return id, err
}

func (f *fakeRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := f.FakeRuntimeService.ContainerStatus(ctx, id, verbose)
	if err != nil {
		return nil, err
	}
	if pid := f.pids[resp.GetStatus().GetMetadata().GetName()]; pid > 0 && verbose {
		resp.Info = map[string]string{"info": fmt.Sprintf(`{"sandboxID":"x","pid":%d}`, pid)}
	}
	return resp, nil
}

// fakeProc builds a /proc whose processes (and "self") are in the given PID
// namespaces.
func fakeProc(t *testing.T, ns map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for who, link := range ns {
		dir := filepath.Join(root, who, "ns")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(link, filepath.Join(dir, "pid")); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	hostNS   = "pid:[4026531836]"
	targetNS = "pid:[4026532301]"
	otherNS  = "pid:[4026532302]"
)

func TestRun(t *testing.T) {
	pids := map[string]int{"target": 101, "debugger": 102}
	for _, tc := range []struct {
		name string
		// pids of the containers by name; nil: the default.
		pids map[string]int
		// ns are the PID namespaces of the processes in the fake /proc.
		ns         map[string]string
		statusInfo map[string]string
		errors     map[string][]error
		leftover   bool
		lost       bool
		want       Outcome
		wantMsg    string
	}{
		{name: "shared", ns: map[string]string{"101": targetNS, "102": targetNS, "self": hostNS}, want: Shared, wantMsg: "debugger process 102 in " + targetNS},
		{name: "shared, leftover of an earlier run removed", leftover: true, ns: map[string]string{"101": targetNS, "102": targetNS, "self": hostNS}, want: Shared},
		{name: "mismatch", ns: map[string]string{"101": targetNS, "102": otherNS, "self": hostNS}, want: Mismatch, wantMsg: "debugger process 102 in " + otherNS},
		{name: "target in the host's namespace proves nothing", ns: map[string]string{"101": hostNS, "102": hostNS, "self": hostNS}, want: Error, wantMsg: "host's PID namespace"},
		{name: "no pid reported", pids: map[string]int{}, ns: map[string]string{"self": hostNS}, want: Error, wantMsg: "reports no process ID"},
		{name: "process gone", ns: map[string]string{"101": targetNS, "self": hostNS}, want: Error, wantMsg: "read PID namespace"},
		{name: "runtime refuses TARGET", ns: map[string]string{"self": hostNS},
			errors: map[string][]error{"CreateContainer": {nil, errors.New("unsupported namespace mode")}}, want: Error, wantMsg: "create container debugger: unsupported namespace mode"},
		{name: "sandbox fails", errors: map[string][]error{"RunPodSandbox": {errors.New("no pause image")}}, want: Error, wantMsg: "run sandbox: no pause image"},
		{name: "sandbox made but its call failed", lost: true, want: Error, wantMsg: "run sandbox: " + context.DeadlineExceeded.Error()},
		{name: "no pause image named", statusInfo: map[string]string{}, want: Error, wantMsg: "names no pause image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			p := pids
			if tc.pids != nil {
				p = tc.pids
			}
			rt := newFakeRuntime(p)
			rt.sandboxLost = tc.lost
			if tc.statusInfo != nil {
				rt.statusInfo = tc.statusInfo
			}
			for call, errs := range tc.errors {
				for _, err := range errs {
					rt.InjectError(call, err)
				}
			}
			if tc.leftover {
				rt.SetFakeSandboxes([]*critesting.FakePodSandbox{{PodSandboxStatus: runtimeapi.PodSandboxStatus{
					Id: "old", Metadata: &runtimeapi.PodSandboxMetadata{Name: SandboxName}, Labels: map[string]string{Label: "target"},
					State: runtimeapi.PodSandboxState_SANDBOX_READY,
				}}})
			}
			at := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
			r := Run(ctx, rt, Config{ProcRoot: fakeProc(t, tc.ns), Now: func() time.Time { return at }})
			if r.Outcome != tc.want || !strings.Contains(r.Message, tc.wantMsg) {
				t.Errorf("Run = %s %q, want %s with %q", r.Outcome, r.Message, tc.want, tc.wantMsg)
			}
			if !r.Time.Equal(at) {
				t.Errorf("Time = %v, want %v", r.Time, at)
			}
			wantReason := map[Outcome]string{Shared: ReasonShared, Mismatch: ReasonMismatch, Error: ReasonPreflightError}[tc.want]
			if r.Reason != wantReason {
				t.Errorf("Reason = %q, want %q", r.Reason, wantReason)
			}
			if n := len(rt.Sandboxes); n != 0 {
				t.Errorf("%d sandboxes left after the check, want none", n)
			}
			if dbg := rt.configs["debugger"]; dbg != nil {
				ns := dbg.GetLinux().GetSecurityContext().GetNamespaceOptions()
				target := rt.configs["target"]
				targetID := critesting.BuildContainerName(target.GetMetadata(), sandboxOf(rt))
				if ns.GetPid() != runtimeapi.NamespaceMode_TARGET || ns.GetTargetId() != targetID {
					t.Errorf("debugger namespaces = %v, want PID TARGET of %s", ns, targetID)
				}
				if target.GetImage().GetImage() != "localhost/pause:test" || dbg.GetImage().GetImage() != "localhost/pause:test" {
					t.Errorf("images = %s, %s, want the runtime's pause image", target.GetImage().GetImage(), dbg.GetImage().GetImage())
				}
			}
		})
	}
}

// sandboxOf is the ID the fake gave the check's sandbox, from the
// container-creating call it saw.
func sandboxOf(rt *fakeRuntime) string {
	for _, c := range rt.Containers {
		return c.SandboxID
	}
	return ""
}

func TestRunTimesOut(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rt := &slowRuntime{newFakeRuntime(map[string]int{"target": 101, "debugger": 102})}
	r := Run(ctx, rt, Config{Timeout: 50 * time.Millisecond, ProcRoot: t.TempDir()})
	if r.Outcome != Error || !strings.Contains(r.Message, context.DeadlineExceeded.Error()) {
		t.Errorf("Run = %s %q, want an error naming the deadline", r.Outcome, r.Message)
	}
	if n := len(rt.Sandboxes); n != 0 {
		t.Errorf("%d sandboxes left after a check that timed out, want none", n)
	}
}

// slowRuntime's StartContainer blocks until the call's context ends.
type slowRuntime struct{ *fakeRuntime }

func (s *slowRuntime) StartContainer(ctx context.Context, id string) error {
	<-ctx.Done()
	return ctx.Err()
}

type imageList []*runtimeapi.Image

func (l imageList) ListImages(context.Context, *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	return l, nil
}

func TestPauseImage(t *testing.T) {
	pinned := func(tag string) *runtimeapi.Image {
		return &runtimeapi.Image{RepoTags: []string{tag}, Pinned: true}
	}
	for _, tc := range []struct {
		name   string
		config string
		images ImageLister
		want   string
	}{
		{name: "containerd 1.x", config: `{"sandboxImage":"registry.k8s.io/pause:3.10"}`, want: "registry.k8s.io/pause:3.10"},
		{name: "containerd 2.x", config: `{"pinnedImages":{"sandbox":"registry.k8s.io/pause:3.10"}}`, want: "registry.k8s.io/pause:3.10"},
		{name: "pinned pause image", config: `{}`, images: imageList{{RepoTags: []string{"busybox:1"}}, pinned("other:1"), pinned("registry.k8s.io/pause:3.10")}, want: "registry.k8s.io/pause:3.10"},
		{name: "one pinned image", images: imageList{pinned("localhost/sandbox:1")}, want: "localhost/sandbox:1"},
		{name: "none", config: `not json`, images: imageList{{RepoTags: []string{"busybox:1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(nil)
			rt.statusInfo = map[string]string{"config": tc.config}
			got, err := PauseImage(context.Background(), rt, tc.images)
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("PauseImage = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}
