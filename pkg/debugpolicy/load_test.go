package debugpolicy

import (
	"strings"
	"testing"
	"time"
)

const example = `apiVersion: debug.ephemeral-agent.io/v1alpha1
kind: DebugPolicy
rules:
- name: prod
  namespaceSelector:
    matchLabels:
      env: prod
  images: ["registry.example.com/debug/*"]
  requireDigest: true
  allowedCapabilities: [SYS_PTRACE]
  runAsNonRoot: true
  allowTarget: true
  resources:
    cpu: 500m
    memory: 128Mi
    pids: 256
  maxDuration: 1h
  idleTimeout: 10m
- name: default
  images: ["localhost/**", "busybox"]
`

func TestParseExample(t *testing.T) {
	p, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 2 || p.Rules[0].Name != "prod" || p.Rules[0].MaxDuration.Duration != time.Hour ||
		p.Rules[0].Resources.Memory.String() != "128Mi" || *p.Rules[0].Resources.Pids != 256 || p.Rules[1].Images[1] != "busybox" {
		t.Errorf("parsed %+v", p)
	}
}

// A file with errors is refused with every problem named, each by its
// rule; unknown fields are errors, not ignored.
func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"wrong kind", "apiVersion: v1\nkind: Pod\n", []string{`apiVersion/kind is "v1"/"Pod"`}},
		{"misspelt field", strings.Replace(example, "runAsNonRoot", "runAsNonroot", 1), []string{"runAsNonroot"}},
		{"many problems", `apiVersion: debug.ephemeral-agent.io/v1alpha1
kind: DebugPolicy
rules:
- name: a
  images: ["busybox:latest", "x/[/**"]
  runAsUser: {min: 10, max: 5}
  resources: {memory: "0"}
  maxDuration: -1s
- name: a
  namespaceSelector: {matchExpressions: [{key: env, operator: Bogus}]}
- images: []
`, []string{`rule "a": images: "busybox:latest"`, `"x/[/**"`, "runAsUser: range 10-5", "resources.memory must be positive", "maxDuration must be positive", `rule "a": name used twice`, "namespaceSelector", "rules[2]: name is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
