package debugapi

import (
	"reflect"
	"testing"
)

func TestStopNames(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{" a, b ,,a", []string{"a", "b"}},
	} {
		if got := ParseNames(tc.value); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNames(%q) = %q, want %q", tc.value, got, tc.want)
		}
	}
	for _, tc := range []struct{ value, name, want string }{
		{"", "a", "a"},
		{"a", "b", "a,b"},
		{"a, b", "b", "a, b"},
	} {
		if got := WithName(tc.value, tc.name); got != tc.want {
			t.Errorf("WithName(%q, %q) = %q, want %q", tc.value, tc.name, got, tc.want)
		}
	}
}
