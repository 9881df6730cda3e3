package criconfig

import (
	"strings"
	"unicode/utf8"
)

// ExpandVars replaces $(NAME) references in s by lookup(NAME), with the
// rules of the Kubernetes API for command, args, env values and
// subPathExpr, as the kubelet expands them:
//
//   - $$ is an escaped $: "$$(X)" gives the literal "$(X)";
//   - a name lookup does not know is left as written, "$(NAME)";
//   - a '$' not followed by '(' or '$', and an unclosed "$(", are literal.
//
// Expansion is a single pass: a value that itself contains $(X) is not
// expanded again. Callers with stricter rules (a subPathExpr may not use an
// unset or empty variable) apply them in lookup.
func ExpandVars(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
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
				// Unclosed: keep "$(" and go on after it, so a later
				// reference in the rest of s still expands.
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
			// Copy the next rune with the '$'; an invalid byte becomes
			// U+FFFD, as in the kubelet (the API's JSON never has one).
			r, size := utf8.DecodeRuneInString(s[i+1:])
			b.WriteByte('$')
			b.WriteRune(r)
			i += size
		}
	}
	return b.String()
}

// lookupIn returns a lookup that tries each map in turn.
func lookupIn(maps ...map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v, true
			}
		}
		return "", false
	}
}
