package criconfig

import "testing"

func TestExpand(t *testing.T) {
	vars := lookupIn(map[string]string{"VAR_A": "A", "VAR_B": "B", "EMPTY": "", "REF": "$(VAR_A)"})
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(VAR_A)", "A"},
		{"x$(VAR_A)y$(VAR_B)z", "xAyBz"},
		{"$(EMPTY)", ""},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"$$(VAR_A)", "$(VAR_A)"},
		{"$$$(VAR_A)", "$A"},
		{"$$$$(VAR_A)", "$$(VAR_A)"},
		{"$VAR_A", "$VAR_A"},
		{"$", "$"},
		{"a$", "a$"},
		{"$(VAR_A", "$(VAR_A"},
		{"$(VAR_A $(VAR_B)", "$(VAR_A $(VAR_B)"}, // the reference runs to the first ')'
		{"$( $(VAR_B)", "$( $(VAR_B)"},
		{"$(VAR_A)$(", "A$("},
		{"$()", "$()"},
		{"$(REF)", "$(VAR_A)"}, // one pass only
		{"héllo $(VAR_A) wörld", "héllo A wörld"},
		{"$é", "$é"},
	} {
		if got := ExpandVars(tc.in, vars); got != tc.want {
			t.Errorf("ExpandVars(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Moved from pkg/volume with its expandVars, now ExpandVars.
func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)/$(B)":  "x/y",
		"$$(A)":      "$(A)",
		"$(C)":       "$(C)",
		"a$b":        "a$b",
		"$(A":        "$(A",
		"end$":       "end$",
		"$(A)$(A)$$": "xx$",
	} {
		if got := ExpandVars(in, func(n string) (string, bool) { v, ok := env[n]; return v, ok }); got != want {
			t.Errorf("ExpandVars(%q) = %q, want %q", in, got, want)
		}
	}
}
