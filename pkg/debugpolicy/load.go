package debugpolicy

import (
	"errors"
	"fmt"
	"path"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Parse decodes and validates a policy file (YAML or JSON). Field names
// are case-sensitive and unknown or duplicate fields are errors, as in
// Kubernetes' own configuration files: a misspelt rule field would
// otherwise impose nothing.
func Parse(data []byte) (*DebugPolicy, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("decode debug policy: %w", err)
	}
	p := &DebugPolicy{}
	strict, err := sigsjson.UnmarshalStrict(j, p)
	if err != nil {
		return nil, fmt.Errorf("decode debug policy: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("decode debug policy: %w", errors.Join(strict...))
	}
	if err := Validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks p and returns every problem found, each naming its rule.
func Validate(p *DebugPolicy) error {
	var errs []error
	if p.APIVersion != APIVersion || p.Kind != Kind {
		errs = append(errs, fmt.Errorf("apiVersion/kind is %q/%q, want %q/%q", p.APIVersion, p.Kind, APIVersion, Kind))
	}
	names := map[string]bool{}
	for i, r := range p.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", where))
		} else {
			where = fmt.Sprintf("rule %q", r.Name)
			if names[r.Name] {
				errs = append(errs, fmt.Errorf("%s: name used twice", where))
			}
			names[r.Name] = true
		}
		if r.NamespaceSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(r.NamespaceSelector); err != nil {
				errs = append(errs, fmt.Errorf("%s: namespaceSelector: %w", where, err))
			}
		}
		for _, pat := range r.Images {
			if err := validPattern(pat); err != nil {
				errs = append(errs, fmt.Errorf("%s: images: %w", where, err))
			}
		}
		for _, c := range r.AllowedCapabilities {
			if c == "" || strings.ContainsAny(c, " \t") {
				errs = append(errs, fmt.Errorf("%s: allowedCapabilities: %q is no capability name", where, c))
			}
		}
		if u := r.RunAsUser; u != nil && (u.Min < 0 || u.Max < u.Min) {
			errs = append(errs, fmt.Errorf("%s: runAsUser: range %d-%d is empty or negative", where, u.Min, u.Max))
		}
		errs = append(errs, validLimits(where, Limits{Resources: r.Resources, MaxDuration: r.MaxDuration, IdleTimeout: r.IdleTimeout})...)
	}
	if p.Defaults != nil {
		errs = append(errs, validLimits("defaults", *p.Defaults)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid debug policy: %w", errors.Join(errs...))
	}
	return nil
}

// validLimits checks caps and time limits: each set must be positive.
func validLimits(where string, l Limits) []error {
	var errs []error
	if res := l.Resources; res != nil {
		if res.CPU != nil && res.CPU.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("%s: resources.cpu must be positive", where))
		}
		if res.Memory != nil && res.Memory.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("%s: resources.memory must be positive", where))
		}
		if res.Pids != nil && *res.Pids <= 0 {
			errs = append(errs, fmt.Errorf("%s: resources.pids must be positive", where))
		}
	}
	if l.MaxDuration != nil && l.MaxDuration.Duration <= 0 {
		errs = append(errs, fmt.Errorf("%s: maxDuration must be positive", where))
	}
	if l.IdleTimeout != nil && l.IdleTimeout.Duration <= 0 {
		errs = append(errs, fmt.Errorf("%s: idleTimeout must be positive", where))
	}
	return errs
}

// validPattern checks an image pattern: a repository, a path.Match
// pattern, or a prefix ending in /**; never with a tag or digest, which the
// pattern would then never match.
func validPattern(pat string) error {
	base := strings.TrimSuffix(pat, "/**")
	if base == "" {
		return fmt.Errorf("%q: empty repository", pat)
	}
	if strings.ContainsAny(base, "@") || strings.Contains(path.Base(base), ":") {
		return fmt.Errorf("%q: a pattern names repositories, without a tag or digest", pat)
	}
	if _, err := path.Match(base, ""); err != nil {
		return fmt.Errorf("%q: %w", pat, err)
	}
	return nil
}
