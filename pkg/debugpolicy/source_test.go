package debugpolicy

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/klog/v2/ktesting"
)

const goodPolicy = `apiVersion: debug.ephemeral-agent.io/v1alpha1
kind: DebugPolicy
rules:
- name: first
`

func TestSourceReload(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kind: Nonsense\n")
	if _, err := NewSource(path); err == nil {
		t.Fatal("NewSource accepted a bad file")
	}
	write(goodPolicy)
	s, err := NewSource(path)
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	s.OnChange(func(Snapshot) { changes++ })

	s.Reload(ctx) // unchanged
	if got := s.Snapshot(); got.Generation != 1 || changes != 0 {
		t.Fatalf("unchanged file: generation %d, %d changes; want 1, 0", got.Generation, changes)
	}

	write(goodPolicy + "- name: first\n") // duplicate name: refused
	s.Reload(ctx)
	got := s.Snapshot()
	if got.Generation != 1 || got.Policy.Rules[0].Name != "first" || len(got.Policy.Rules) != 1 {
		t.Errorf("after a refused reload: %+v, want the previous policy", got)
	}
	if got.LastError == "" {
		t.Error("a refused reload left no LastError")
	}

	write(goodPolicy + "- name: second\n")
	s.Reload(ctx)
	got = s.Snapshot()
	if got.Generation != 2 || len(got.Policy.Rules) != 2 || got.LastError != "" || changes != 1 {
		t.Errorf("after a good reload: %+v (%d changes), want generation 2 with two rules, no error, one change", got, changes)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.Reload(ctx)
	if got = s.Snapshot(); got.Generation != 2 || got.LastError == "" {
		t.Errorf("after the file went: %+v, want the policy kept and an error", got)
	}
	var none *Source
	if none.Policy() != nil || none.Snapshot().Policy != nil {
		t.Error("a nil Source has a policy")
	}
}
