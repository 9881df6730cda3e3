package cm

import (
	"fmt"
	"strings"
)

// diff describes how two configs differ, field by field; "" if equal.
func diff(got, want ResourceConfig) string {
	var out []string
	for _, f := range []struct {
		name    string
		got, wt any
	}{
		{"CPUShares", deref(got.CPUShares), deref(want.CPUShares)},
		{"CPUQuota", deref(got.CPUQuota), deref(want.CPUQuota)},
		{"CPUPeriod", deref(got.CPUPeriod), deref(want.CPUPeriod)},
		{"Memory", deref(got.Memory), deref(want.Memory)},
		{"PidsLimit", deref(got.PidsLimit), deref(want.PidsLimit)},
	} {
		if f.got != f.wt {
			out = append(out, fmt.Sprintf("%s = %v, want %v", f.name, f.got, f.wt))
		}
	}
	return strings.Join(out, "; ")
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}
