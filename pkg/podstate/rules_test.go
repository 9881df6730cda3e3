package podstate_test

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	pt "github.com/ephemeral-agent/ephemeral-agent/pkg/podstate/podstatetest"
)

// restartPolicy returns a pointer to a container restart policy.
func restartPolicy(p v1.ContainerRestartPolicy) *v1.ContainerRestartPolicy { return &p }

func TestIsSidecar(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy *v1.ContainerRestartPolicy
		want   bool
	}{
		{"no restart policy", nil, false},
		{"Always", restartPolicy(v1.ContainerRestartPolicyAlways), true},
		// Container restart rules give regular containers a policy too;
		// only Always makes an init container a sidecar.
		{"Never", restartPolicy(v1.ContainerRestartPolicyNever), false},
		{"OnFailure", restartPolicy(v1.ContainerRestartPolicyOnFailure), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podstate.IsSidecar(&v1.Container{Name: "c", RestartPolicy: tc.policy}); got != tc.want {
				t.Errorf("IsSidecar = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	sb2, sb1 := pt.ReadySandbox("sb2", 1), pt.DeadSandbox("sb1", 0)
	st := pt.State([]podstate.Sandbox{sb2, sb1},
		pt.Ctr("c1", "sb1", pt.Regular, "app", pt.Exited, 0, 1),
		pt.Ctr("c2", "sb2", pt.Regular, "app", pt.Exited, 1, 1),
		pt.Ctr("c3", "sb2", pt.Regular, "app", pt.Running, 2, 0),
		pt.Ctr("i1", "sb2", pt.Init, "app", pt.Exited, 3, 0),
		pt.Ctr("o1", "sb1", pt.Regular, "old", pt.Exited, 0, 0),
	)
	for _, tc := range []struct {
		name   string
		state  *podstate.PodState
		sb     *podstate.Sandbox
		typ    criconfig.ContainerType
		cname  string
		wantID string // "" for nil
	}{
		{"newest of the newest sandbox", st, &sb2, pt.Regular, "app", "c3"},
		{"an older sandbox has its own", st, &sb1, pt.Regular, "app", "c1"},
		{"the type counts, not only the name", st, &sb2, pt.Init, "app", "i1"},
		{"a container of an earlier sandbox does not count", st, &sb2, pt.Regular, "old", ""},
		{"no container of that name", st, &sb2, pt.Regular, "none", ""},
		{"no sandbox", st, nil, pt.Regular, "app", ""},
		{"no state", nil, &sb2, pt.Regular, "app", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.state.Current(tc.sb, tc.typ, tc.cname)
			if gotID := idOf(got); gotID != tc.wantID {
				t.Errorf("Current = %q, want %q", gotID, tc.wantID)
			}
		})
	}
}

// idOf is the container's ID, "" for none.
func idOf(c *podstate.Container) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func TestInitContainerDone(t *testing.T) {
	sb := []podstate.Sandbox{pt.ReadySandbox("sb1", 0)}
	plain := pt.Pod(pt.WithInit("i1"))
	sidecar := pt.Pod(pt.WithSidecar("proxy"), pt.WithInit("i2"))
	ctr := func(name string, st runtimeapi.ContainerState, exit int32) podstate.Container {
		return pt.Ctr("c-"+name, "sb1", pt.Init, name, st, 0, exit)
	}
	withProbes := func(s *podstate.PodState, p map[string]podstate.Probed) *podstate.PodState {
		s.Probes = p
		return s
	}
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		want  bool
	}{
		{"init: no instance", plain, pt.State(sb), false},
		{"init: created", plain, pt.State(sb, ctr("i1", pt.Created, 0)), false},
		{"init: running", plain, pt.State(sb, ctr("i1", pt.Running, 0)), false},
		{"init: exited 0", plain, pt.State(sb, ctr("i1", pt.Exited, 0)), true},
		{"init: exited 1", plain, pt.State(sb, ctr("i1", pt.Exited, 1)), false},
		{"init: unknown state", plain, pt.State(sb, ctr("i1", pt.Unknown, 0)), false},
		{"sidecar: no instance", sidecar, pt.State(sb), false},
		{"sidecar: created, never started", sidecar, pt.State(sb, ctr("proxy", pt.Created, 0)), false},
		{"sidecar: running, no prober", sidecar, pt.State(sb, ctr("proxy", pt.Running, 0)), true},
		{"sidecar: running, startup probe not yet succeeded", sidecar,
			withProbes(pt.State(sb, ctr("proxy", pt.Running, 0)), map[string]podstate.Probed{"c-proxy": {}}), false},
		{"sidecar: running, startup probe succeeded", sidecar,
			withProbes(pt.State(sb, ctr("proxy", pt.Running, 0)), map[string]podstate.Probed{"c-proxy": {Started: true, Ready: true}}), true},
		{"sidecar: exited before the next init container ran: it must start again", sidecar, pt.State(sb, ctr("proxy", pt.Exited, 137)), false},
		{"sidecar: exited after the next init container ran", sidecar, pt.State(sb, ctr("proxy", pt.Exited, 137), ctr("i2", pt.Running, 0)), true},
		{"sidecar: restarted, startup probe pending, the pod went past it", sidecar,
			withProbes(pt.State(sb, ctr("proxy", pt.Running, 0), ctr("i2", pt.Exited, 0)), map[string]podstate.Probed{"c-proxy": {}}), true},
		{"sidecar: a regular container ran", pt.Pod(pt.WithSidecar("proxy")),
			pt.State(sb, ctr("proxy", pt.Exited, 1), pt.Ctr("a", "sb1", pt.Regular, "app", pt.Running, 0, 0)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.state.InitContainerDone(tc.pod, 0); got != tc.want {
				t.Errorf("InitContainerDone = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShouldRestart(t *testing.T) {
	rule := func(action v1.ContainerRestartRuleAction, op v1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) v1.ContainerRestartRule {
		return v1.ContainerRestartRule{Action: action, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
	}
	restart := v1.ContainerRestartRuleActionRestart
	in, notIn := v1.ContainerRestartRuleOnExitCodesOpIn, v1.ContainerRestartRuleOnExitCodesOpNotIn
	for _, tc := range []struct {
		name        string
		pod         v1.RestartPolicy
		policy      *v1.ContainerRestartPolicy
		rules       []v1.ContainerRestartRule
		exit        int32
		want        bool
		restartable bool
	}{
		{"pod Always", v1.RestartPolicyAlways, nil, nil, 0, true, true},
		{"pod unset is Always", "", nil, nil, 0, true, true},
		{"pod OnFailure, exit 0", v1.RestartPolicyOnFailure, nil, nil, 0, false, true},
		{"pod OnFailure, exit 1", v1.RestartPolicyOnFailure, nil, nil, 1, true, true},
		{"pod Never", v1.RestartPolicyNever, nil, nil, 1, false, false},
		{"container Never under pod Always", v1.RestartPolicyAlways, restartPolicy(v1.ContainerRestartPolicyNever), nil, 1, false, false},
		{"container Always under pod Never", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyAlways), nil, 0, true, true},
		{"container OnFailure under pod Never, exit 2", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyOnFailure), nil, 2, true, true},
		{"container OnFailure, exit 0", v1.RestartPolicyAlways, restartPolicy(v1.ContainerRestartPolicyOnFailure), nil, 0, false, true},
		{"rule In matches", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{rule(restart, in, 42, 43)}, 42, true, true},
		{"rule In does not match: the policy decides", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{rule(restart, in, 42)}, 1, false, true},
		{"rule NotIn matches", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{rule(restart, notIn, 0)}, 3, true, true},
		{"rule NotIn does not match", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{rule(restart, notIn, 0)}, 0, false, true},
		{"rules without a container policy do not count", v1.RestartPolicyNever, nil, []v1.ContainerRestartRule{rule(restart, in, 42)}, 42, false, false},
		{"an unknown operator never matches", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{rule(restart, "Between", 42)}, 42, false, true},
		{"a rule without exit codes never matches", v1.RestartPolicyNever, restartPolicy(v1.ContainerRestartPolicyNever), []v1.ContainerRestartRule{{Action: restart}}, 42, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := pt.Pod(pt.WithPolicy(tc.pod))
			c := &v1.Container{Name: "app", RestartPolicy: tc.policy, RestartPolicyRules: tc.rules}
			if got := podstate.ShouldRestart(pod, c, tc.exit); got != tc.want {
				t.Errorf("ShouldRestart = %v, want %v", got, tc.want)
			}
			if got := podstate.Restartable(pod, c); got != tc.restartable {
				t.Errorf("Restartable = %v, want %v", got, tc.restartable)
			}
		})
	}
}

func TestInitDone(t *testing.T) {
	sb1 := []podstate.Sandbox{pt.ReadySandbox("sb1", 0)}
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		state *podstate.PodState
		want  bool
	}{
		{"no init containers is done even without a sandbox", pt.Pod(), pt.State(nil), true},
		{"no init containers, no state at all", pt.Pod(), nil, true},
		{"init containers but no sandbox", pt.Pod(pt.WithInit("i1")), pt.State(nil), false},
		{"first done, second not started", pt.Pod(pt.WithInit("i1", "i2")), pt.State(sb1, pt.Ctr("c1", "sb1", pt.Init, "i1", pt.Exited, 0, 0)), false},
		{"all done", pt.Pod(pt.WithInit("i1", "i2")), pt.State(sb1, pt.Ctr("c1", "sb1", pt.Init, "i1", pt.Exited, 0, 0), pt.Ctr("c2", "sb1", pt.Init, "i2", pt.Exited, 1, 0)), true},
		{"one failed", pt.Pod(pt.WithInit("i1")), pt.State(sb1, pt.Ctr("c1", "sb1", pt.Init, "i1", pt.Exited, 0, 1)), false},
		{
			name:  "failed, then succeeded on restart: the newest counts",
			pod:   pt.Pod(pt.WithInit("i1")),
			state: pt.State(sb1, pt.Ctr("c1", "sb1", pt.Init, "i1", pt.Exited, 0, 1), pt.Ctr("c2", "sb1", pt.Init, "i1", pt.Exited, 1, 0)),
			want:  true,
		},
		{"a running sidecar is done", pt.Pod(pt.WithSidecar("proxy")), pt.State(sb1, pt.Ctr("s1", "sb1", pt.Init, "proxy", pt.Running, 0, 0)), true},
		{"a sidecar that exited before the pod went past it is not", pt.Pod(pt.WithSidecar("proxy")), pt.State(sb1, pt.Ctr("s1", "sb1", pt.Init, "proxy", pt.Exited, 0, 1)), false},
		{"a sidecar created but never started is not", pt.Pod(pt.WithSidecar("proxy")), pt.State(sb1, pt.Ctr("s1", "sb1", pt.Init, "proxy", pt.Created, 0, 0)), false},
		{
			name:  "a sidecar then an init container: both needed",
			pod:   pt.Pod(pt.WithSidecar("proxy"), pt.WithInit("i1")),
			state: pt.State(sb1, pt.Ctr("s1", "sb1", pt.Init, "proxy", pt.Running, 0, 0)),
			want:  false,
		},
		{
			name:  "an init container of an older sandbox does not count",
			pod:   pt.Pod(pt.WithInit("i1")),
			state: pt.State([]podstate.Sandbox{pt.ReadySandbox("sb2", 1), pt.DeadSandbox("sb1", 0)}, pt.Ctr("c1", "sb1", pt.Init, "i1", pt.Exited, 0, 0)),
			want:  false,
		},
		{
			name:  "a regular container of the same name is no init container",
			pod:   pt.Pod(pt.WithInit("app")),
			state: pt.State(sb1, pt.Ctr("c1", "sb1", pt.Regular, "app", pt.Exited, 0, 0)),
			want:  false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podstate.InitDone(tc.pod, tc.state); got != tc.want {
				t.Errorf("InitDone = %v, want %v", got, tc.want)
			}
		})
	}
}

// specPod has a container "app", an init container "setup" and an
// ephemeral container "debug" with a terminal, each of its own image so a
// test can tell which list a spec came from.
func specPod() *v1.Pod {
	return pt.Pod(pt.WithInit("setup"), pt.WithEphemeral("app", "debug"), func(p *v1.Pod) {
		p.Spec.EphemeralContainers[0].Image = "localhost/debug:test"
		p.Spec.EphemeralContainers[0].TTY = true
	})
}

func TestContainerSpec(t *testing.T) {
	for _, tc := range []struct {
		name      string
		typ       criconfig.ContainerType
		cname     string
		wantImage string // "" for no spec
	}{
		{"regular", pt.Regular, "app", "localhost/distroless-app:test"},
		{"init", pt.Init, "setup", "localhost/busybox:test"},
		{"ephemeral", pt.Ephemeral, "debug", "localhost/debug:test"},
		// Containers of other agents carry no type: they are read as
		// regular.
		{"no type: regular", "", "app", "localhost/distroless-app:test"},
		{"regular name asked as init", pt.Init, "app", ""},
		{"init name asked as regular", pt.Regular, "setup", ""},
		{"ephemeral name asked as regular", pt.Regular, "debug", ""},
		{"unknown name", pt.Regular, "none", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podstate.ContainerSpec(specPod(), tc.typ, tc.cname)
			if tc.wantImage == "" {
				if got != nil {
					t.Errorf("ContainerSpec = %+v, want nil", got)
				}
				return
			}
			if got == nil || got.Name != tc.cname || got.Image != tc.wantImage {
				t.Fatalf("ContainerSpec = %+v, want %s of image %s", got, tc.cname, tc.wantImage)
			}
		})
	}

	// An ephemeral container keeps its common fields in the Container shape.
	if got := podstate.ContainerSpec(specPod(), pt.Ephemeral, "debug"); !got.TTY {
		t.Error("the ephemeral container's tty was lost in the conversion")
	}
}

func TestFindContainer(t *testing.T) {
	// API validation keeps names unique across the lists; FindContainer's
	// order still decides when they are not, as the kubelet's lookup does.
	pod := pt.Pod(func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "everywhere", Image: "regular"})
		p.Spec.InitContainers = []v1.Container{{Name: "everywhere", Image: "init"}, {Name: "notregular", Image: "init"}}
		for _, n := range []string{"everywhere", "notregular", "onlyephemeral"} {
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
				EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: n, Image: "ephemeral"},
			})
		}
	})
	for _, tc := range []struct {
		name      string
		wantType  criconfig.ContainerType
		wantImage string
	}{
		{"everywhere", pt.Regular, "regular"},
		{"notregular", pt.Init, "init"},
		{"onlyephemeral", pt.Ephemeral, "ephemeral"},
		{"nowhere", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, spec := podstate.FindContainer(pod, tc.name)
			if typ != tc.wantType {
				t.Errorf("type = %q, want %q", typ, tc.wantType)
			}
			if tc.wantImage == "" {
				if spec != nil {
					t.Errorf("spec = %+v, want nil", spec)
				}
				return
			}
			if spec == nil || spec.Image != tc.wantImage {
				t.Errorf("spec = %+v, want the %s one", spec, tc.wantImage)
			}
		})
	}
}
