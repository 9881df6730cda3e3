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
		if got := expand(tc.in, vars); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
