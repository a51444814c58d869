package gateway

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// connLimitListener caps open connections. Past the cap a new connection
// gets our JSON 503 and is closed, instead of fasthttp's plain-text one
// (fasthttp's Concurrency is set above this cap so it never answers
// itself). Idle keep-alive connections count: each holds a fasthttp
// worker.
type connLimitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

var overloadedConn = func() []byte {
	body := `{"error":{"code":"overloaded","message":"the gateway is at its connection limit: retry after a second, and reuse connections"}}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			// In its own goroutine so a client that does not read cannot
			// hold up accepting; this runs only while overloaded.
			go func() {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write(overloadedConn)
				c.Close()
			}()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l      *connLimitListener
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}
