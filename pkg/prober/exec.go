package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	remote "k8s.io/cri-client/pkg"
)

// Runtime is the part of the CRI runtime service exec probes call
// (k8s.io/cri-client's RuntimeService satisfies it).
type Runtime interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout []byte, stderr []byte, err error)
}

// exitError is an exec that ran and exited non-zero (k8s.io/utils/exec's
// ExitError, which cri-client returns).
type exitError interface {
	error
	ExitStatus() int
}

// execProbe runs cmd in the container through CRI ExecSync. Exit 0 is a
// success; another exit, or the command outliving timeout, a failure with
// the command's output; any other error means the probe could not run.
func execProbe(ctx context.Context, rt Runtime, containerID string, cmd []string, timeout time.Duration) (bool, string, error) {
	stdout, stderr, err := rt.ExecSync(ctx, containerID, cmd, timeout)
	out := string(stdout) + string(stderr)
	var exit exitError
	switch {
	case err == nil:
		return true, out, nil
	case errors.As(err, &exit):
		return exit.ExitStatus() == 0, out, nil
	case errors.Is(err, remote.ErrCommandTimedOut) || errors.Is(err, context.DeadlineExceeded):
		return false, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
	default:
		return false, "", fmt.Errorf("exec %q: %w", strings.Join(cmd, " "), err)
	}
}
