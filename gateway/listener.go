package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/rawsock"
	"github.com/valyala/fasthttp"
)

// connLimitListener caps open connections, in all and per client
// address. Past a cap a new connection gets our JSON 503 and is closed,
// instead of fasthttp's plain-text one (fasthttp's Concurrency is set
// above the cap so it never answers itself). Idle keep-alive connections
// count: each holds a fasthttp worker.
//
// The per-address cap is server.per_ip_share of the total, half by
// default (as nginx's limit_conn, it answers 503): 300 connections from
// one attacker leave the other half to everyone else. Behind a proxy
// every sender has the proxy's address: set per_ip_share = 1 there.
//
// Every connection Serve accepts goes through it, capped or not (max 0),
// because the connection also carries its address's shared state
// (reserved body memory, admit.go) and the head scanner below.
type connLimitListener struct {
	net.Listener
	max     int64 // 0: no cap
	perAddr int64 // 0: no cap
	headMax int   // server.max_header_bytes: the head scanner's bound
	// The server's timeouts, which the connections keep (see timeouts).
	readTimeout, writeTimeout, idleTimeout time.Duration
	open                                   atomic.Int64

	refusalLingers atomic.Int64 // refused connections lingering now

	mu    sync.Mutex
	addrs map[netip.Addr]*addrState
}

// addrState is what the connections of one client address share.
type addrState struct {
	ip    netip.Addr
	conns int64        // open connections; under connLimitListener.mu
	body  atomic.Int64 // body bytes its requests hold (admit.go)
}

func overloadedAnswer(message string) []byte {
	body := `{"error":{"code":"overloaded","message":"` + message + `"}}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

var (
	overloadedConn = overloadedAnswer("the gateway is at its connection limit: retry after a second, and reuse connections")
	overloadedAddr = overloadedAnswer("this address has as many connections open as one address may: retry after a second, and reuse connections")
)

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max && l.max > 0 {
			l.open.Add(-1)
			l.refuseConn(c, overloadedConn)
			continue
		}
		a := l.take(c)
		if a == nil {
			l.open.Add(-1)
			l.refuseConn(c, overloadedAddr)
			continue
		}
		// rawsock: reads and writes without the runtime's system call
		// bookkeeping, and an answer sent when the next request is read
		// (see that package). A TLS listener must wrap these connections,
		// not the other way round, or they lose it.
		cc := &countedConn{Conn: rawsock.WrapServer(c), l: l, addr: a, headMax: l.headMax, arm: true}
		cc.startHead()
		// The first request's first byte, and the whole of it, come
		// under the read timeout, as in fasthttp.
		rawsock.SetReadTimeout(cc.Conn, l.readTimeout)
		return cc, nil
	}
}

// refuseConn answers a connection over a cap and closes it, in its own
// goroutine so a client that does not read cannot hold up accepting;
// this runs only while over a cap. The close lingers (see
// countedConn.Close), a second at most: a client that sent its request
// at once must get the 503 that tells it when to retry, not a reset. Only
// maxRefusalLingers of them linger at a time: past a cap, connections may
// be a flood, and holding each for a second would hand it the
// descriptors the cap is there to save.
func (l *connLimitListener) refuseConn(c net.Conn, answer []byte) {
	go func() {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(answer); err == nil {
			if l.refusalLingers.Add(1) <= maxRefusalLingers {
				lingerClose(c, time.Second)
				l.refusalLingers.Add(-1)
				return
			}
			l.refusalLingers.Add(-1)
		}
		c.Close()
	}()
}

const maxRefusalLingers = 64

// take counts a connection against its address; nil when the address is
// at its cap.
func (l *connLimitListener) take(c net.Conn) *addrState {
	var ip netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil {
		l.addrs = map[netip.Addr]*addrState{}
	}
	a := l.addrs[ip]
	if a == nil {
		a = &addrState{ip: ip}
		l.addrs[ip] = a
	}
	if l.perAddr > 0 && a.conns >= l.perAddr {
		return nil
	}
	a.conns++
	return a
}

// drop gives a connection of a back; an address with no connection left
// is forgotten (no request of it can be holding body memory then).
func (l *connLimitListener) drop(a *addrState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.conns--; a.conns == 0 {
		delete(l.addrs, a.ip)
	}
}

type countedConn struct {
	net.Conn
	l      *connLimitListener
	addr   *addrState
	closed atomic.Bool
	// phase is where the request under way is, for Close (which Shutdown
	// may call from another goroutine): idle, reading, or answered.
	phase atomic.Uint32
	// lingering: Close handed the connection to the lingering goroutine,
	// which alone closes it.
	lingering atomic.Bool

	// The head scanner (see Read), touched only by the goroutine serving
	// the connection.
	scan    bool // the bytes read are (still) a request head
	bad     bool // the head ended in a bare LF: the next Read fails
	off     int  // bytes of the head scanned so far
	lastLF  int  // offset of the head's last LF; -2: none yet
	lastCR  bool // that LF had a CR before it
	prev    byte // the last byte scanned
	headMax int  // past this many bytes, stop scanning (fasthttp answers 431)

	// The timeouts (see timeouts), touched only by the serving goroutine.
	kept    bool // a request was answered: the next one is a keep-alive's
	arm     bool // the next Write starts an answer: it sets the write timeout
	interim bool // the next Write is a 100 Continue (expect): timed on its own
}

// Why the connection keeps the server's timeouts, not fasthttp: fasthttp
// sets a deadline from the clock at each of a request's phases (idle, the
// head's first byte, the answer), three clock reads a request on top of
// the body's deadline (bodyHead). On the benchmark machine they were
// 0.6% of the gateway's CPU under passthrough load, about 60 ns each: a
// clock read right after a system call misses the TLB, which the call
// flushed (benchmarks/HISTORY.md, twentieth run).
// The connection sets the same deadlines at the same phases, which
// fasthttp's ConnState hook, expect and the writes mark, through
// rawsock.SetReadTimeout and SetWriteTimeout, which count a far deadline
// from the lazy deadlines' clock instead: it fires not early, and at most
// two of their ticks (200 ms) late, as the lazy deadlines do. fasthttp's
// own timeouts are zero (gateway.go); its behaviour on a deadline is
// unchanged, since the deadlines are the same.
//   - read_timeout: from the accept to the end of the first request, and
//     from the first byte of every later request to its end (or the
//     body's deadline, which bodyHead sets from the declared length).
//   - idle_timeout (read_timeout when zero): from an answer to the next
//     request's first byte.
//   - write_timeout: from the answer's first write. A 100 Continue
//     (expect marks it) is timed from its own write and leaves the answer
//     after the body to be timed afresh: that answer may come long after,
//     a body and a target's answer later, and the body may have come with
//     the head, so no read marks it.
//
// A connection Close was called on (Shutdown's, between an answer and
// StateIdle) is left to its lingering close's own deadline.
func (c *countedConn) timeouts(s fasthttp.ConnState) {
	l := c.l
	if c.closed.Load() {
		return
	}
	switch s {
	case fasthttp.StateActive:
		if c.kept {
			// 0 clears the idle deadline, as fasthttp does without one.
			rawsock.SetReadTimeout(c.Conn, l.readTimeout)
		}
		c.arm = true
	case fasthttp.StateIdle:
		c.kept = true
		d := l.idleTimeout
		if d == 0 {
			d = l.readTimeout
		}
		rawsock.SetReadTimeout(c.Conn, d)
		c.arm = true
	}
}

// errBareLF is what Read returns for a head that ends in a bare LF.
var errBareLF = errors.New("the request head ends with a bare LF; HTTP/1.1 lines end with CRLF")

// Read scans each request head as it arrives for a blank line made with
// a bare LF ("\n\n", "\n\r\n"). fasthttp takes a bare LF as a line end
// inside a head (RFC 9112 §2.2 allows that) but ends a head only at
// CRLFCRLF, so a head written with bare LFs throughout would wait for
// more bytes until the read timeout, then get a 408. Failing the next
// read instead makes fasthttp's header read fail at once, and the
// ErrorHandler answers 400 (handleReadError).
//
// Why the connection and not the parser: fasthttp offers no hook before
// the head is complete, and forking its parser for this is worse than
// these few lines. A head starts where fasthttp's serving loop reads
// after the connection opened or went idle (ConnState, connState below);
// it ends at its first blank line. Only an LF is looked at closely
// (bytes.IndexByte), so a head costs a few tens of nanoseconds.
func (c *countedConn) Read(p []byte) (int, error) {
	if c.bad {
		return 0, errBareLF
	}
	n, err := c.Conn.Read(p)
	if c.scan && n > 0 {
		c.scanHead(p[:n])
	}
	return n, err
}

// startHead readies the scanner for the next request head.
func (c *countedConn) startHead() {
	c.scan, c.off, c.lastLF, c.lastCR, c.prev = true, 0, -2, false, 0
}

func (c *countedConn) scanHead(b []byte) {
	if c.off == 0 && !requestLineStart(b) {
		// Judge only what is surely a head from its start. A keep-alive
		// sender that pipelines may have had the next head read already,
		// before the connection went idle; then this read continues it,
		// or a body, and is not looked at.
		c.scan = false
		return
	}
	base := c.off
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		o := base + i
		cr := (i > 0 && b[i-1] == '\r') || (i == 0 && c.prev == '\r')
		switch {
		case c.lastLF == o-1: // "\n\n"
			c.bad, c.scan = true, false
			return
		case c.lastLF == o-2 && cr: // an empty line ended by CRLF: the head's end
			c.bad = !c.lastCR // "\n\r\n" without a CR before the first LF
			c.scan = false
			return
		}
		c.lastLF, c.lastCR = o, cr
		i++
	}
	c.off += len(b)
	c.prev = b[len(b)-1]
	if c.headMax > 0 && c.off > c.headMax {
		c.scan = false // fasthttp refuses the head as too large
	}
}

// requestLineStart reports whether b starts as a request line does: a
// method in capitals, then a space.
func requestLineStart(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	return i > 0 && i < len(b) && b[i] == ' '
}

// The phases of a connection's request, for Close.
const (
	phaseIdle     = iota // between requests
	phaseReading         // a request has begun: nothing answered yet
	phaseAnswered        // an answer went out, maybe before the request was read whole
)

// connState is fasthttp's ConnState hook: a connection going idle is
// about to read the next request's head; one going active has a request
// under way.
func connState(c net.Conn, s fasthttp.ConnState) {
	cc := counted(c)
	if cc == nil {
		return
	}
	switch s {
	case fasthttp.StateActive:
		cc.phase.Store(phaseReading)
	case fasthttp.StateIdle:
		cc.phase.Store(phaseIdle)
		cc.startHead()
	}
	cc.timeouts(s)
}

// counted is c as Serve accepted it, under a TLS layer if there is one
// (which must wrap countedConn, see Accept); nil for a connection Serve
// did not accept.
func counted(c net.Conn) *countedConn {
	if cc, ok := c.(*countedConn); ok {
		return cc
	}
	if t, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		cc, _ := t.NetConn().(*countedConn)
		return cc
	}
	return nil
}

// Write notes that an answer went out (see Close), and times it (see
// timeouts).
func (c *countedConn) Write(p []byte) (int, error) {
	if c.phase.Load() == phaseReading {
		c.phase.Store(phaseAnswered)
	}
	if c.arm || c.interim {
		if c.interim {
			c.interim = false // the answer after it sets its own
		} else {
			c.arm = false
		}
		if c.l.writeTimeout > 0 {
			rawsock.SetWriteTimeout(c.Conn, c.l.writeTimeout)
		}
	}
	return c.Conn.Write(p)
}

// lingerFor bounds how long a closing connection reads what its client
// still sends (nginx's lingering_timeout is 5 s as well).
const lingerFor = 5 * time.Second

// Close closes at once a connection closed between requests (the client
// left, the idle timeout, Shutdown) or before anything was answered
// (Shutdown closing one stalled in its first head: nothing to protect).
// One closed after an answer to a request under way (the gateway answered
// it with "Connection: close", often before reading all of it: a head or
// body over its limit, a malformed request) closes lingering, in its own
// goroutine: the answer goes out with a FIN,
// what the client still sends is read and dropped until it closes or
// lingerFor passes, and only then is the connection closed. Closed at
// once with the request's rest unread, the kernel would answer with a
// reset, which can destroy the answer before the client reads it: the
// client would see "connection reset by peer" instead of the 431 or 413
// that says what to fix. The connection counts against the caps until it
// is closed for good, so lingering is bounded by them too.
func (c *countedConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		if c.lingering.Load() {
			// fasthttp closes a connection Shutdown claimed twice; the
			// lingering goroutine closes it when it is done.
			return nil
		}
		return c.Conn.Close()
	}
	if c.phase.Load() == phaseAnswered {
		c.lingering.Store(true)
		// Through rawsock, which sends the answer it holds first.
		if closeWrite(c.Conn) {
			go func() {
				// Through rawsock, which may hold the connection's read
				// deadline (lazy deadlines): setting the socket's own
				// would race with the sweeper handing that one over.
				drain(c.Conn, lingerFor)
				c.Conn.Close()
				c.release()
			}()
			return nil
		}
		c.lingering.Store(false)
	}
	c.release()
	return c.Conn.Close()
}

// lingerClose is the lingering close of a connection that counts against
// no cap: half-close, drain for up to d, close.
func lingerClose(c net.Conn, d time.Duration) {
	if closeWrite(c) {
		drain(c, d)
	}
	c.Close()
}

// closeWrite shuts down c's sending side (its answer goes out, then a
// FIN); false when c is not a TCP connection or is broken already.
func closeWrite(c net.Conn) bool {
	cw, ok := c.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

// drain reads and drops what c's client still sends, until it closes or
// d passes.
func drain(c net.Conn, d time.Duration) {
	if c.SetReadDeadline(time.Now().Add(d)) == nil {
		// io.Discard reads into a pooled buffer; the copy ends at the
		// client's FIN (EOF), a reset or the deadline.
		_, _ = io.Copy(io.Discard, c)
	}
}

func (c *countedConn) release() {
	c.l.open.Add(-1)
	c.l.drop(c.addr)
}
