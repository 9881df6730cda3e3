package kuberuntime

import (
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// targetSharing is a TargetNamespaces whose answer a test sets.
type targetSharing struct{ err error }

func (t targetSharing) TargetSharing() error { return t.err }

// TestSyncTargetUnsupported: only where the preflight proved the runtime
// does not share a target's PID namespace, and only for a debugger created
// with mode TARGET, is the debugger held back, waiting with
// TargetNamespaceUnsupported and one Warning Event.
func TestSyncTargetUnsupported(t *testing.T) {
	mismatch := errors.New("the container runtime does not run a container with PID namespace mode TARGET in its target container's PID namespace")
	sharePID := func(p *v1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }
	for _, tc := range []struct {
		name     string
		check    TargetNamespaces // nil: no preflight
		target   string
		podOpts  []func(*v1.Pod)
		reported bool // the pod's status already shows the reason
		held     bool
		event    bool
	}{
		{name: "no preflight", target: "app"},
		{name: "preflight found sharing (or could not run)", check: targetSharing{}, target: "app"},
		{name: "mismatch holds a targeted debugger", check: targetSharing{mismatch}, target: "app", held: true, event: true},
		{name: "mismatch, already reported: no second Event", check: targetSharing{mismatch}, target: "app", reported: true, held: true},
		{name: "mismatch, no target", check: targetSharing{mismatch}},
		{name: "mismatch, pod shares its PID namespace", check: targetSharing{mismatch}, target: "app", podOpts: []func(*v1.Pod){sharePID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			pod := testPod(append(tc.podOpts, withEphemeral("debugger", tc.target))...)
			if tc.reported {
				pod.Status.EphemeralContainerStatuses = []v1.ContainerStatus{{Name: "debugger",
					State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: debugapi.ReasonTargetUnsupported}}}}
			}
			s, rt, st, rec := newTestSyncer(t, pod, fakeImages{}, fakeVolumes{})
			s.TargetNamespaces = tc.check
			// The first sync runs the sandbox and the app, the second the
			// debugger, whose target then runs.
			_, _ = s.SyncPod(ctx, pod.UID)
			for len(rec.Events) > 0 {
				<-rec.Events
			}
			_, err := s.SyncPod(ctx, pod.UID)
			if tc.held != (err != nil) {
				t.Errorf("sync error = %v, want one: %v", err, tc.held)
			}
			if n := len(containersNamed(t, rt, "app")); n != 1 {
				t.Errorf("app: %d containers, want 1 whatever the debugger's fate", n)
			}
			n := len(containersNamed(t, rt, "debugger"))
			w := st.waiting[podstate.ContainerKey{Type: ephT, Name: "debugger"}]
			if tc.held {
				if n != 0 {
					t.Errorf("%d debugger containers created, want none", n)
				}
				if w.Reason != debugapi.ReasonTargetUnsupported || !strings.Contains(w.Message, "TARGET preflight") || !strings.Contains(w.Message, mismatch.Error()) {
					t.Errorf("debugger waiting = %+v, want %s naming the preflight's finding", w, debugapi.ReasonTargetUnsupported)
				}
			} else if n != 1 || w.Reason != "" {
				t.Errorf("debugger: %d containers, waiting %+v; want it started", n, w)
			}
			var events []string
			for len(rec.Events) > 0 {
				if e := <-rec.Events; strings.HasPrefix(e, "Warning") {
					events = append(events, e)
				}
			}
			wantEvents := 0
			if tc.event {
				wantEvents = 1
			}
			if len(events) != wantEvents || (wantEvents == 1 && !strings.HasPrefix(events[0], "Warning "+debugapi.ReasonTargetUnsupported+" not started")) {
				t.Errorf("warning events = %q, want %d %s", events, wantEvents, debugapi.ReasonTargetUnsupported)
			}
		})
	}
}
