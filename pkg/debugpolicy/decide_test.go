package debugpolicy

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func debugger(mutate ...func(*v1.EphemeralContainer)) *v1.EphemeralContainer {
	ec := &v1.EphemeralContainer{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg", Image: "registry.example.com/debug/busybox:1.37"}}
	for _, m := range mutate {
		m(ec)
	}
	return ec
}

func withSC(f func(*v1.SecurityContext)) func(*v1.EphemeralContainer) {
	return func(ec *v1.EphemeralContainer) {
		if ec.SecurityContext == nil {
			ec.SecurityContext = &v1.SecurityContext{}
		}
		f(ec.SecurityContext)
	}
}

func TestDecide(t *testing.T) {
	yes, no := true, false
	uid := func(n int64) *int64 { return &n }
	mem := resource.MustParse("128Mi")
	policy := func(rules ...Rule) *DebugPolicy {
		return &DebugPolicy{TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind}, Rules: rules}
	}
	prod := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	for _, tc := range []struct {
		name     string
		policy   *DebugPolicy
		ns       map[string]string
		pod      *v1.Pod
		ec       *v1.EphemeralContainer
		allowed  bool
		rule     string
		contains string
	}{
		{name: "no policy: as the kubelet", ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.Privileged = &yes })), allowed: true},
		{name: "no rule matches: allowed", policy: policy(Rule{Name: "prod", NamespaceSelector: prod, Images: []string{"nothing/*"}}), ns: map[string]string{"env": "dev"}, ec: debugger(), allowed: true},
		{name: "image allowed by pattern", policy: policy(Rule{Name: "r", Images: []string{"registry.example.com/debug/*"}}), ec: debugger(), allowed: true, rule: "r"},
		{name: "image allowed by prefix", policy: policy(Rule{Name: "r", Images: []string{"registry.example.com/**"}}), ec: debugger(), allowed: true, rule: "r"},
		{name: "image denied", policy: policy(Rule{Name: "r", Images: []string{"registry.example.com/tools/*"}}), ec: debugger(), contains: `rule "r": image registry.example.com/debug/busybox:1.37 is not in the allowed images`},
		{name: "docker hub short name normalized", policy: policy(Rule{Name: "r", Images: []string{"busybox"}}), ec: debugger(func(ec *v1.EphemeralContainer) { ec.Image = "docker.io/library/busybox:latest" }), allowed: true, rule: "r"},
		{name: "localhost image", policy: policy(Rule{Name: "r", Images: []string{"localhost/**"}}), ec: debugger(func(ec *v1.EphemeralContainer) { ec.Image = "localhost/busybox:test" }), allowed: true, rule: "r"},
		{name: "digest required, tag given", policy: policy(Rule{Name: "r", RequireDigest: true}), ec: debugger(), contains: "must be named by digest"},
		{name: "digest required, digest given", policy: policy(Rule{Name: "r", RequireDigest: true}), ec: debugger(func(ec *v1.EphemeralContainer) {
			ec.Image = "registry.example.com/debug/busybox@sha256:" + strings.Repeat("a", 64)
		}), allowed: true, rule: "r"},
		{name: "privileged denied by default", policy: policy(Rule{Name: "r"}), ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.Privileged = &yes })), contains: "privileged"},
		{name: "privileged allowed", policy: policy(Rule{Name: "r", AllowPrivileged: true}), ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.Privileged = &yes })), allowed: true, rule: "r"},
		{name: "capability allowed, any spelling", policy: policy(Rule{Name: "r", AllowedCapabilities: []string{"CAP_SYS_PTRACE"}}), ec: debugger(withSC(func(sc *v1.SecurityContext) {
			sc.Capabilities = &v1.Capabilities{Add: []v1.Capability{"SYS_PTRACE"}}
		})), allowed: true, rule: "r"},
		{name: "capability denied", policy: policy(Rule{Name: "r", AllowedCapabilities: []string{"SYS_PTRACE"}}), ec: debugger(withSC(func(sc *v1.SecurityContext) {
			sc.Capabilities = &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}}
		})), contains: "capability NET_ADMIN is not allowed"},
		{name: "no capabilities at all", policy: policy(Rule{Name: "r", AllowedCapabilities: []string{}}), ec: debugger(withSC(func(sc *v1.SecurityContext) {
			sc.Capabilities = &v1.Capabilities{Add: []v1.Capability{"SYS_PTRACE"}}
		})), contains: "capability SYS_PTRACE"},
		{name: "non-root required, root", policy: policy(Rule{Name: "r", RunAsNonRoot: true}), ec: debugger(), contains: "non-root"},
		{name: "non-root required, pod's runAsUser", policy: policy(Rule{Name: "r", RunAsNonRoot: true}),
			pod: &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: uid(1000)}}}, ec: debugger(), allowed: true, rule: "r"},
		{name: "non-root required, container overrides the pod's to root", policy: policy(Rule{Name: "r", RunAsNonRoot: true}),
			pod: &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: uid(1000)}}}, ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.RunAsUser = uid(0) })), contains: "non-root"},
		{name: "non-root required, runAsNonRoot", policy: policy(Rule{Name: "r", RunAsNonRoot: true}), ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.RunAsNonRoot = &yes })), allowed: true, rule: "r"},
		{name: "uid range, none given", policy: policy(Rule{Name: "r", RunAsUser: &IDRange{Min: 1000, Max: 1999}}), ec: debugger(), contains: "must set runAsUser in 1000-1999"},
		{name: "uid range, outside", policy: policy(Rule{Name: "r", RunAsUser: &IDRange{Min: 1000, Max: 1999}}), ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.RunAsUser = uid(2000) })), contains: "runAsUser 2000 is outside"},
		{name: "uid range, inside", policy: policy(Rule{Name: "r", RunAsUser: &IDRange{Min: 1000, Max: 1999}}), ec: debugger(withSC(func(sc *v1.SecurityContext) { sc.RunAsUser = uid(1500) })), allowed: true, rule: "r"},
		{name: "target denied", policy: policy(Rule{Name: "r", AllowTarget: &no}), ec: debugger(func(ec *v1.EphemeralContainer) { ec.TargetContainerName = "app" }), contains: "--target"},
		{name: "target allowed when not set", policy: policy(Rule{Name: "r"}), ec: debugger(func(ec *v1.EphemeralContainer) { ec.TargetContainerName = "app" }), allowed: true, rule: "r"},
		{name: "first matching rule decides", policy: policy(
			Rule{Name: "prod", NamespaceSelector: prod, Images: []string{"registry.example.com/tools/*"}},
			Rule{Name: "default"},
		), ns: map[string]string{"env": "prod"}, ec: debugger(), contains: `rule "prod"`},
		{name: "later rule for other namespaces", policy: policy(
			Rule{Name: "prod", NamespaceSelector: prod, Images: []string{"registry.example.com/tools/*"}},
			Rule{Name: "default", Resources: &Resources{Memory: &mem}},
		), ns: map[string]string{"env": "dev"}, ec: debugger(), allowed: true, rule: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod
			if pod == nil {
				pod = &v1.Pod{}
			}
			d := Decide(tc.policy, tc.ns, pod, tc.ec)
			if tc.contains != "" && tc.allowed {
				t.Fatal("bad case: an allowed case has no message")
			}
			if d.Allowed != tc.allowed || (tc.allowed && d.Rule != tc.rule) {
				t.Errorf("Decide = allowed %v by %q (%s); want allowed %v by %q", d.Allowed, d.Rule, d.Message, tc.allowed, tc.rule)
			}
			if !strings.Contains(d.Message, tc.contains) {
				t.Errorf("message %q, want it to contain %q", d.Message, tc.contains)
			}
		})
	}
}

// An allowed container gets the deciding rule's limits.
func TestDecideLimits(t *testing.T) {
	mem, pids := resource.MustParse("64Mi"), int64(100)
	p := &DebugPolicy{Rules: []Rule{{
		Name: "capped", Resources: &Resources{Memory: &mem, Pids: &pids},
		MaxDuration: &metav1.Duration{Duration: time.Hour}, IdleTimeout: &metav1.Duration{Duration: 10 * time.Minute},
	}}}
	d := Decide(p, nil, &v1.Pod{}, debugger())
	if !d.Allowed || d.Resources == nil || d.Resources.Memory.Cmp(mem) != 0 || *d.Resources.Pids != 100 || d.MaxDuration != time.Hour || d.IdleTimeout != 10*time.Minute {
		t.Errorf("Decide = %+v, want the rule's limits", d)
	}
}
