package streaming

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// sessionWriter is the ResponseWriter the proxy sees. It learns the status
// the client was sent, whether written as a response or, after the proxy
// hijacked the connection, as the runtime's raw response; it counts the
// bytes of the upgraded connection; and it can close that connection from
// outside, which ends the proxy's copy loops.
type sessionWriter struct {
	http.ResponseWriter

	// onUpgrade, when set before proxying, is called once the client was
	// sent a 101, and returns the function that ends what it began.
	onUpgrade func() (end func())

	mu     sync.Mutex
	status int
	conn   *countingConn
	closed bool
	// end is onUpgrade's; ended says endSession was called.
	end   func()
	ended bool
}

func (s *sessionWriter) WriteHeader(code int) {
	s.mu.Lock()
	if s.status == 0 {
		s.status = code
	}
	s.mu.Unlock()
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	if s.status == 0 {
		s.status = http.StatusOK
	}
	s.mu.Unlock()
	return s.ResponseWriter.Write(b)
}

// Hijack hands out the client connection wrapped in a counter. The proxy
// ignores the returned buffer: a client waits for 101 before it streams.
func (s *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &countingConn{Conn: c, onStatus: s.setStatus}
	s.mu.Lock()
	s.conn = cc
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// The session was cancelled while the runtime was being dialled.
		_ = c.Close()
	}
	return cc, rw, nil
}

func (s *sessionWriter) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == 0 {
		s.status = code
		if code == http.StatusSwitchingProtocols && s.onUpgrade != nil && !s.ended {
			s.end = s.onUpgrade()
		}
	}
}

// endSession ends what onUpgrade began, if it did; later calls do nothing.
func (s *sessionWriter) endSession() {
	s.mu.Lock()
	end := s.end
	s.end, s.ended = nil, true
	s.mu.Unlock()
	if end != nil {
		end()
	}
}

// close ends the session: the upgraded connection if there is one, or the
// one about to be hijacked.
func (s *sessionWriter) close() {
	s.mu.Lock()
	s.closed = true
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// result returns the status the client got (0: none) and the bytes read
// from and written to the client after the hijack, protocol framing
// included.
func (s *sessionWriter) result() (status int, in, out int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		in, out = s.conn.in.Load(), s.conn.out.Load()
	}
	return s.status, in, out
}

// countingConn counts a hijacked connection's bytes. Its first write is the
// runtime's response line, from which it learns the status (101 when the
// session was established).
type countingConn struct {
	net.Conn
	in, out  atomic.Int64
	onStatus func(int)
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	if c.out.Load() == 0 {
		if code, ok := statusLine(b); ok {
			c.onStatus(code)
		}
	}
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// statusLine reads the code of "HTTP/1.1 101 Switching Protocols".
func statusLine(b []byte) (int, bool) {
	if len(b) < 12 || string(b[:7]) != "HTTP/1." || b[8] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(b[9:12]))
	return code, err == nil
}
