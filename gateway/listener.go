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
//
// Every connection Serve accepts goes through it, capped or not (max 0),
// because the connection also carries the request's admission state
// (admit.go).
type connLimitListener struct {
	net.Listener
	max    int64 // 0: no cap
	open   atomic.Int64
	budget *atomic.Int64 // Gateway.bodyMem
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
		if l.open.Add(1) > l.max && l.max > 0 {
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

	// Admission state of the request being served. refused is touched
	// only by the goroutine serving the connection; held also by Close,
	// which fasthttp may call from another goroutine at shutdown.
	held    atomic.Int64 // body bytes reserved from the budget
	refused refusal
}

// admitted releases the current request's reservation and clears its
// refusal: the request is over, or the next one is starting.
func (c *countedConn) admitted() {
	c.refused = admitted
	if n := c.held.Swap(0); n > 0 {
		c.l.budget.Add(-n)
	}
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
		if n := c.held.Swap(0); n > 0 {
			c.l.budget.Add(-n)
		}
	}
	return c.Conn.Close()
}
