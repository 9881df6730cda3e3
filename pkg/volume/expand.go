package volume

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// expandSubPathExpr expands $(VAR) references in a subPathExpr with env.
// A variable that is unset or empty is an error, as with the kubelet;
// "$$" is a literal "$".
func expandSubPathExpr(expr string, env map[string]string) (string, error) {
	missing := map[string]bool{}
	out := expandVars(expr, func(name string) (string, bool) {
		v, ok := env[name]
		if !ok || v == "" {
			missing[name] = true
		}
		return v, true
	})
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("missing value for %s", strings.Join(names, ", "))
	}
	return out, nil
}

// expandVars replaces each $(NAME) in s by lookup(NAME), keeping the
// reference as written when lookup has no value. "$$" becomes "$"; a "$"
// that starts no reference, and an unclosed "$(", stay as they are. These
// are the rules of the kubelet's variable expansion.
func expandVars(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// literalEnv returns the environment a container declares with literal
// values, each expanded with those before it, as the kubelet expands them.
// Variables from valueFrom or envFrom are left out: they need the API.
func literalEnv(env []v1.EnvVar) map[string]string {
	out := make(map[string]string, len(env))
	for _, e := range env {
		if e.ValueFrom != nil {
			continue
		}
		out[e.Name] = expandVars(e.Value, func(name string) (string, bool) {
			v, ok := out[name]
			return v, ok
		})
	}
	return out
}
