package main

import (
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestRootCommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantOut string
		wantErr bool
	}{
		// Without a command: the usage, as kubectl plugins do.
		{nil, "kubectl ephemeral [command]", false},
		{[]string{"stop", "web"}, "", true},
		{[]string{"policy", "n1", "n2"}, "", true},
		{[]string{"ls", "extra"}, "", true},
		{[]string{"ls", "-o", "wide"}, "", true},
	} {
		streams, _, out, _ := genericiooptions.NewTestIOStreams()
		cmd := newRootCommand(streams)
		cmd.SetArgs(tc.args)
		err := cmd.ExecuteContext(context.Background())
		if (err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.wantOut) {
			t.Errorf("%q: error %v, output:\n%s", tc.args, err, out.String())
		}
	}
}
