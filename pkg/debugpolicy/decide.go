package debugpolicy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ReasonDenied is the reason of a debug container the policy denied: its
// Terminated state's, and its Warning Event's.
const ReasonDenied = debugapi.ReasonPolicyDenied

// Decision is the policy's answer for one debug container.
type Decision struct {
	// Allowed says whether the debug container may run.
	Allowed bool
	// Rule is the name of the rule that decided; "" when none matched.
	Rule string
	// Message says why a denied container is denied, naming the rule.
	Message string
	// Resources, MaxDuration and IdleTimeout are the deciding rule's
	// limits for an allowed container; nil or zero: none.
	Resources   *Resources
	MaxDuration time.Duration
	IdleTimeout time.Duration
}

// Decide returns the policy's decision for debug container ec of pod, in
// a namespace labelled nsLabels. A nil policy allows everything, as the
// kubelet does. It is pure.
func Decide(p *DebugPolicy, nsLabels map[string]string, pod *v1.Pod, ec *v1.EphemeralContainer) Decision {
	if p == nil {
		return Decision{Allowed: true}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.selects(nsLabels) {
			continue
		}
		d := Decision{Allowed: true, Rule: r.Name}
		if why := r.denies(pod, ec); why != "" {
			d.Allowed = false
			d.Message = fmt.Sprintf("debug policy rule %q: %s", r.Name, why)
			return d
		}
		d.withLimits(Limits{Resources: r.Resources, MaxDuration: r.MaxDuration, IdleTimeout: r.IdleTimeout}, p.Defaults)
		return d
	}
	d := Decision{Allowed: true}
	d.withLimits(Limits{}, p.Defaults)
	return d
}

// withLimits sets d's limits: a rule's own, else, field by field, the
// policy's defaults.
func (d *Decision) withLimits(own Limits, defaults *Limits) {
	def := Limits{}
	if defaults != nil {
		def = *defaults
	}
	res := Resources{}
	if own.Resources != nil {
		res = *own.Resources
	}
	if def.Resources != nil {
		if res.CPU == nil {
			res.CPU = def.Resources.CPU
		}
		if res.Memory == nil {
			res.Memory = def.Resources.Memory
		}
		if res.Pids == nil {
			res.Pids = def.Resources.Pids
		}
	}
	if res.CPU != nil || res.Memory != nil || res.Pids != nil {
		d.Resources = &res
	}
	for _, lim := range []struct {
		own, def *metav1.Duration
		out      *time.Duration
	}{{own.MaxDuration, def.MaxDuration, &d.MaxDuration}, {own.IdleTimeout, def.IdleTimeout, &d.IdleTimeout}} {
		switch {
		case lim.own != nil:
			*lim.out = lim.own.Duration
		case lim.def != nil:
			*lim.out = lim.def.Duration
		}
	}
}

// selects says whether r applies in a namespace labelled nsLabels. A
// selector Validate refused selects nothing.
func (r *Rule) selects(nsLabels map[string]string) bool {
	if r.NamespaceSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(r.NamespaceSelector)
	return err == nil && sel.Matches(labels.Set(nsLabels))
}

// denies returns why r denies ec, "" when it does not.
func (r *Rule) denies(pod *v1.Pod, ec *v1.EphemeralContainer) string {
	if why := r.deniesImage(ec.Image); why != "" {
		return why
	}
	sc := ec.SecurityContext
	if !r.AllowPrivileged && sc != nil && sc.Privileged != nil && *sc.Privileged {
		return "privileged debug containers are not allowed"
	}
	if r.AllowedCapabilities != nil && sc != nil && sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Add {
			if !allowedCapability(r.AllowedCapabilities, string(c)) {
				return fmt.Sprintf("capability %s is not allowed (allowed: %s)", c, strings.Join(r.AllowedCapabilities, ", "))
			}
		}
	}
	uid, nonRoot := runAs(pod, ec)
	if r.RunAsNonRoot && !nonRoot && (uid == nil || *uid == 0) {
		return "the debug container must run as a non-root user (runAsNonRoot or a non-zero runAsUser)"
	}
	if u := r.RunAsUser; u != nil {
		if uid == nil {
			return fmt.Sprintf("the debug container must set runAsUser in %d-%d", u.Min, u.Max)
		}
		if *uid < u.Min || *uid > u.Max {
			return fmt.Sprintf("runAsUser %d is outside %d-%d", *uid, u.Min, u.Max)
		}
	}
	if r.AllowTarget != nil && !*r.AllowTarget && ec.TargetContainerName != "" {
		return fmt.Sprintf("sharing the process namespace of container %s (--target) is not allowed", ec.TargetContainerName)
	}
	return ""
}

// deniesImage returns why r denies image, "" when it does not.
func (r *Rule) deniesImage(image string) string {
	if !r.RequireDigest && len(r.Images) == 0 {
		return ""
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Sprintf("image %q is not a valid reference: %v", image, err)
	}
	if _, digested := ref.(reference.Digested); r.RequireDigest && !digested {
		return fmt.Sprintf("image %s must be named by digest (@sha256:...)", image)
	}
	if len(r.Images) == 0 {
		return ""
	}
	repo := ref.Name()
	for _, pat := range r.Images {
		if matchRepository(pat, repo) {
			return ""
		}
	}
	return fmt.Sprintf("image %s is not in the allowed images (%s)", image, strings.Join(r.Images, ", "))
}

// matchRepository says whether repository repo (normalized) matches pat:
// a prefix ending in /** matches every repository below it; any other
// pattern is path.Match's, tried as written and normalized (so that
// "busybox" matches docker.io/library/busybox).
func matchRepository(pat, repo string) bool {
	if prefix, ok := strings.CutSuffix(pat, "/**"); ok {
		return strings.HasPrefix(repo, prefix+"/") || strings.HasPrefix(repo, normalizedPrefix(prefix)+"/")
	}
	if ok, _ := path.Match(pat, repo); ok {
		return true
	}
	if n, err := reference.ParseNormalizedNamed(pat); err == nil && n.Name() != pat {
		ok, _ := path.Match(n.Name(), repo)
		return ok
	}
	return false
}

// normalizedPrefix is prefix as Docker Hub names normalize ("library" is
// docker.io/library); prefix itself when it does not parse.
func normalizedPrefix(prefix string) string {
	if n, err := reference.ParseNormalizedNamed(prefix); err == nil {
		return n.Name()
	}
	return prefix
}

// allowedCapability says whether capability c is in allowed, with or
// without the CAP_ prefix, in any case.
func allowedCapability(allowed []string, c string) bool {
	norm := func(s string) string { return strings.TrimPrefix(strings.ToUpper(s), "CAP_") }
	return slices.ContainsFunc(allowed, func(a string) bool { return norm(a) == norm(c) })
}

// runAs returns the user the debug container runs as when its security
// context or the pod's names one, and whether runAsNonRoot is required:
// the container's setting overrides the pod's.
func runAs(pod *v1.Pod, ec *v1.EphemeralContainer) (uid *int64, nonRoot bool) {
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid = psc.RunAsUser
		nonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	}
	if sc := ec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	return uid, nonRoot
}
