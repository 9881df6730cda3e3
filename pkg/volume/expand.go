package volume

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// expandSubPathExpr expands $(VAR) references in a subPathExpr with env.
// A variable that is unset or empty is an error, as with the kubelet;
// "$$" is a literal "$".
func expandSubPathExpr(expr string, env map[string]string) (string, error) {
	missing := map[string]bool{}
	out := criconfig.ExpandVars(expr, func(name string) (string, bool) {
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

// literalEnv returns the environment a container declares with literal
// values, each expanded with those before it, as the kubelet expands them.
// Variables from valueFrom or envFrom are left out: they need the API.
func literalEnv(env []v1.EnvVar) map[string]string {
	out := make(map[string]string, len(env))
	for _, e := range env {
		if e.ValueFrom != nil {
			continue
		}
		out[e.Name] = criconfig.ExpandVars(e.Value, func(name string) (string, bool) {
			v, ok := out[name]
			return v, ok
		})
	}
	return out
}
