package streaming

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// streamOptions are the streams a client asks for on exec and attach.
type streamOptions struct {
	Stdin, Stdout, Stderr, TTY bool
}

// parseStreamOptions reads the stream flags. kube-apiserver sends the
// kubelet's names (input, output, error, tty) with "1"; the PodExecOptions
// names (stdin, stdout, stderr) and "true" are accepted too, for direct
// clients. As in the kubelet, a terminal merges stderr into stdout, and at
// least one stream is required.
func parseStreamOptions(q url.Values) (streamOptions, error) {
	o := streamOptions{
		Stdin:  flag(q, "input", "stdin"),
		Stdout: flag(q, "output", "stdout"),
		Stderr: flag(q, "error", "stderr"),
		TTY:    flag(q, "tty"),
	}
	if o.TTY {
		o.Stderr = false
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// flag is true when the first of names present in q has a true value:
// "1" as the API server sends, or anything strconv.ParseBool takes for true.
func flag(q url.Values, names ...string) bool {
	for _, n := range names {
		if vs, ok := q[n]; ok && len(vs) > 0 {
			b, err := strconv.ParseBool(vs[0])
			return err == nil && b
		}
	}
	return false
}

// parsePorts reads port-forward's port parameters: repeated, each possibly
// a comma-separated list, every port in 1-65535. None is fine: over SPDY the
// ports arrive in stream headers, and only WebSocket clients must name them
// up front (the runtime's streaming server enforces that).
func parsePorts(q url.Values) ([]int32, error) {
	var ports []int32
	for _, v := range q["port"] {
		if v == "" {
			return nil, errors.New(`query parameter "port" cannot be empty`)
		}
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("unable to parse %q as a port: %w", p, err)
			}
			if n < 1 {
				return nil, fmt.Errorf("port %q must be > 0", p)
			}
			ports = append(ports, int32(n))
		}
	}
	return ports, nil
}
