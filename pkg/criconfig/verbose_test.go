package criconfig

import "testing"

func TestVerbosePID(t *testing.T) {
	for _, tc := range []struct {
		name string
		info map[string]string
		want int
		ok   bool
	}{
		{"containerd", map[string]string{"info": `{"pid":42,"sandboxID":"x"}`}, 42, true},
		{"no info", map[string]string{}, 0, false},
		{"not JSON", map[string]string{"info": "{"}, 0, false},
		{"no pid", map[string]string{"info": `{}`}, 0, false},
	} {
		got, err := VerbosePID(tc.info)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s: VerbosePID = %d, %v; want %d, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}
