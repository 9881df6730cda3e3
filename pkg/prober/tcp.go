package prober

import (
	"context"
	"net"
	"strconv"
	"time"
)

// tcpProbe connects to host:port: a connection within timeout is a
// success, anything else a failure with the dial's error.
func tcpProbe(ctx context.Context, host string, port int, timeout time.Duration) (bool, string, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false, err.Error(), nil
	}
	_ = conn.Close()
	return true, "", nil
}
