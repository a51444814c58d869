package target

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/internal/rawsock"
)

// pipeline is a target's pipelined transport (config pipeline = N): its
// requests go out over at most N connections, several to a write, and
// their answers come back several to a read, in order (HTTP/1.1
// pipelining).
//
// Why: a target that is woken for each request costs a wake-up per
// request, on its side and (on a shared core) on hookgate's; pipelined, it
// is woken once for several and its CPU per request halves
// (benchmarks/HISTORY.md, twenty-fifth run). Why it is not the default:
// HTTP/1.1 servers must take pipelined requests, but some proxies and
// appliances do not, and one slow answer holds up the ones behind it on
// its connection.
//
// Why not fasthttp's PipelineClient (the first version): it costs hookgate
// 10-15% more CPU a request than the host client, in a writer and a
// reader goroutine per connection (two hand-offs a request), a copy of
// each answer's header, and a timer a request (twenty-fifth and
// twenty-sixth runs). Here the senders do the work themselves:
//   - A sender writes its request into its connection's buffer (memory
//     only), yields once so that the other senders of the moment add
//     theirs, and flushes: whoever flushes first sends what is there, in
//     one write, and the ones after it find their request gone already.
//   - The sender that finds its connection with nothing in flight leads:
//     it reads the answers in order, each into its own sender's response,
//     and wakes that sender; once its own answer is in, it hands the lead
//     to the next sender waiting. So an answer costs no copy, and a
//     sender no more than one wake-up.
//   - No timers: an answer is read with its sender's deadline as the
//     connection's read deadline, and the senders behind it wait for the
//     leader. Their deadlines are about the same: each is the target's
//     timeout from when its sender started, and the order senders reach
//     a connection in is about the order they started in. A request with
//     less time than the target's timeout (an oauth2 resend, with what is
//     left of its attempt) joins only a connection with nothing in
//     flight, and goes unpipelined otherwise, so that it does not wait
//     past its deadline for the answers ahead of it.
//   - No sender waits for room in the send buffer (flush): the target
//     may have stopped reading requests until its answers are read.
//
// What pipelining gets wrong, and how it is kept from the caller:
//   - A connection lost with requests on it (the target closed it after
//     an answer with "Connection: close", after an oversized answer, on a
//     restart, or at its keep-alive timeout) fails all of them at once.
//     Each is sent once more at once on the host client's connections
//     (sendPipelined), as the host client does with a stale pooled
//     connection; the Idempotency-Key lets the target drop one it had
//     taken. So does an answer that does not come in time: its request
//     gets the timeout, and the connection, whose next bytes would be
//     that late answer, is closed.
//   - A failed dial (or TLS handshake) is the sender's error at once, and
//     for a second after it requests go by the host client, which dials
//     itself and fails at once, or succeeds once the target is back.
//   - A target that keeps no connection open (keep-alive off, an HTTP/1.0
//     server, a proxy that answers "Connection: close") takes one request
//     a connection: every request queued behind it is sent twice, and one
//     whose answer the target's close cuts off (a close with requests
//     unread resets the connection) is sent again after the target took
//     it. After refusalsOff connections whose first answer said
//     "Connection: close" (HTTP/1.0's lack of keep-alive included) with
//     requests waiting behind it, and none in between that got a second
//     answer, the pipeline is off for offFor: requests go by the host
//     client, which such a target suits. Then it is tried again. A
//     connection that ends without an answer does not count: a target's
//     idle timeout ends all the pipeline's connections at once, and the
//     next burst finds them closed.
//   - A request queued behind another that gets no answer in time,
//     although the one ahead did, timed out on its own slow answer, on
//     the answers ahead of it (a slow one, a stall of the target), or
//     on nothing: a server or proxy that parses one request a read and
//     drops what came with it answers the first request of a write and
//     none of the others. Worse, such a target's answer to a request
//     that reached it in a write of its own behind a dropped one is
//     taken for the dropped one, and so on down the connection until a
//     request gets no answer in time; no client can tell those answers
//     from the right ones. Either way the target is better off
//     unpipelined (each such timeout takes the requests queued behind
//     it down too): at lateOff such moments within lateWithin (or
//     lateOff timeouts, if longer) the pipeline is off for offFor. A
//     moment is one a timeout: a stall of the target, or of hookgate,
//     that times out the waiting request of every connection at once
//     counts once. A first request's timeout does not count: a target
//     that is down or hung is no pipelining problem. A dropping target
//     under a steady load, whose connections are never idle, may go
//     uncaught for long: its chains of misplaced answers seldom end.
type pipeline struct {
	addr        string
	n           int
	idle        time.Duration
	maxResponse int
	timeout     time.Duration
	dialer      *fasthttp.TCPDialer
	tls         *tls.Config // nil for http

	failed atomic.Pointer[dialFailure] // the last dial's failure; nil after a success

	refusals atomic.Int32     // connections closed by their first answer, requests waiting, since one got a second
	offUntil atomic.Int64     // mono ns: until then requests go by the host client (refusalsOff, lateOff)
	off      func(why string) // told when the pipeline turns itself off; nil for none

	lateMu sync.Mutex
	lates  [lateOff]int64 // mono ns of the latest moments a queued request timed out (late), oldest first; 0 for none

	mu      sync.Mutex
	dialed  sync.Cond   // on mu: a dial ended
	conns   []*plConn   // open, at most n
	dialing int         // dials under way
	sweep   *time.Timer // closes connections idle past idle; nil when none is open
}

type dialFailure struct {
	err error
	at  time.Time
}

// maxKept bounds the send buffer a connection keeps between flushes.
const maxKept = 256 << 10

// dialBackoff is how long after a failed dial requests go by the host
// client, so that a target that is down is not dialed twice for each
// request.
const dialBackoff = time.Second

// refusalsOff and offFor: after refusalsOff connections whose first
// answer closed them with requests waiting behind it (and none in between
// that got a second answer), the pipeline is off for offFor. One such
// connection can be a keep-alive request limit, or a server shutting
// down, meeting a burst; three with nothing kept in between are a target
// that does not keep connections.
const (
	refusalsOff = 3
	offFor      = time.Minute
)

// lateOff and lateWithin: lateOff moments within lateWithin (or
// lateOff timeouts, if longer: moments are a timeout apart at least) when
// a request queued behind another timed out, although the one ahead was
// answered, turn the pipeline off for offFor (see pipeline). One or two
// can be a stall; three a minute are a target that pipelining does not
// suit.
const (
	lateOff    = 3
	lateWithin = time.Minute
)

// monoStart anchors mono: the pipeline's clocks (offUntil, lates,
// idleAt) are int64s in atomics, counted on the monotonic clock from
// here rather than as unix times, so that a step of the wall clock (NTP
// setting it, a VM resumed) neither holds the pipeline off for as long
// as the step back nor ends a minute off early, nor merges or splits
// late moments.
var monoStart = time.Now()

// mono is the monotonic time now, in ns since monoStart (never 0 once
// any time has passed, which is what a 0 "none" in lates relies on).
func mono() int64 { return monoAt(time.Now()) }

// monoAt is t in ns since monoStart; t must carry a monotonic reading
// (time.Now's does).
func monoAt(t time.Time) int64 { return int64(t.Sub(monoStart)) }

// Why the pipeline turned itself off, for the log.
const (
	whyClosed = "its pipelined connections close after their first answer (keep-alive off, HTTP/1.0, or Connection: close on every answer)"
	whyLate   = "requests queued behind others on its pipelined connections time out (it answers slowly or stalls, which a longer timeout may cure, or it does not take pipelined requests)"
)

// newPipeline: isTLS for an https target, whose tlsCfg is nil without a
// tls table (Go's defaults, as the host client takes them).
func newPipeline(addr string, n int, timeout, idle time.Duration, maxResponse int, dialer *fasthttp.TCPDialer, isTLS bool, tlsCfg *tls.Config, host string) *pipeline {
	p := &pipeline{addr: addr, n: n, idle: idle, maxResponse: maxResponse, timeout: timeout, dialer: dialer}
	p.dialed.L = &p.mu
	if isTLS {
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsCfg != nil {
			p.tls = tlsCfg.Clone()
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = host
		}
	}
	return p
}

// plConn is one pipelined connection.
type plConn struct {
	p   *pipeline
	c   net.Conn      // over TLS for an https target
	raw net.Conn      // the socket: closed without TLS's close_notify, which could wait on a target that stopped reading
	try tryWriter     // the socket's writes that do not wait; nil over TLS
	br  *bufio.Reader // the leader's

	inFlight atomic.Int32 // len(q), read by pick without the lock
	broken   atomic.Bool  // closed; no request may join
	idleAt   atomic.Int64 // when q last emptied, mono ns
	answers  int          // answers read; the leader's (the lead's hand-off orders its reads and writes)

	mu       sync.Mutex
	bw       *bufio.Writer // writes into pend
	pend     []byte        // requests written, not yet sent
	out      []byte        // what the flusher is sending (swapped with pend)
	flushing bool          // a sender is sending; it sends what joins pend meanwhile
	q        []*plWait     // the requests written and not answered, in order
	lead     bool          // a sender is reading the answers (len(q) > 0)
}

// tryWriter is a rawsock connection's TryWrite.
type tryWriter interface {
	TryWrite(p []byte) (int, error)
}

// plWait is a sender waiting for its answer.
type plWait struct {
	resp     *fasthttp.Response
	skipBody bool
	deadline time.Time
	short    bool // less time than the target's timeout: alone on a connection only
	behind   bool // queued behind another request (late)
	err      error
	signal   chan bool // true: lead the reads from here; false: answered (err set)
}

var plWaits = sync.Pool{New: func() any { return &plWait{signal: make(chan bool, 1)} }}

// pendWriter is bw's writer: it appends to pend (under plConn.mu).
type pendWriter struct{ pc *plConn }

func (w pendWriter) Write(b []byte) (int, error) {
	w.pc.pend = append(w.pc.pend, b...)
	return len(b), nil
}

var (
	// errLost: the request's connection went away before its answer came
	// (lostOnPipeline).
	errLost = errors.New("pipelined connection lost before the answer")
	// errBroken: the connection picked broke before the request joined.
	errBroken = errors.New("pipelined connection closed")
	// errUnpipelined: the request is to go by the host client (see
	// pipeline: its deadline, or a Connection: close).
	errUnpipelined = errors.New("request not pipelined")
)

// do sends req on one of the pipeline's connections and reads its answer
// into resp, by deadline.
func (p *pipeline) do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, deadline time.Time) error {
	if req.ConnectionClose() {
		return errUnpipelined // it would end the connection under the ones behind it
	}
	req.URI().DisablePathNormalizing = true
	w := plWaits.Get().(*plWait)
	w.resp, w.skipBody, w.deadline, w.err = resp, req.Header.IsHead(), deadline, nil
	w.short = timeout < p.timeout
	defer func() {
		w.resp = nil
		plWaits.Put(w)
	}()
	var pc *plConn
	var lead bool
	for tries := 0; ; tries++ {
		var err error
		if pc, err = p.pick(deadline); err != nil {
			return err
		}
		lead, err = pc.enqueue(req, w)
		switch {
		case err == nil:
		case err != errBroken:
			return err
		case tries < 2:
			continue
		default:
			return errLost // sent again unpipelined (sendPipelined)
		}
		break
	}
	// The other senders of this moment (the dispatcher's workers given
	// their deliveries together, the server's handlers woken together)
	// write theirs before the write that wakes the target.
	runtime.Gosched()
	pc.flush(deadline)
	if !lead {
		lead = <-w.signal
	}
	if lead {
		pc.readAnswers(w)
	}
	return w.err
}

// pick is the connection with the fewest requests in flight, a new one if
// those open all have some and fewer than n are open.
func (p *pipeline) pick(deadline time.Time) (*plConn, error) {
	var start time.Time
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var best *plConn
		for i := 0; i < len(p.conns); i++ {
			pc := p.conns[i]
			if pc.broken.Load() {
				p.conns = append(p.conns[:i], p.conns[i+1:]...)
				i--
				continue
			}
			if best == nil || pc.inFlight.Load() < best.inFlight.Load() {
				best = pc
			}
		}
		if best != nil && (best.inFlight.Load() == 0 || len(p.conns)+p.dialing >= p.n) {
			return best, nil
		}
		if len(p.conns)+p.dialing < p.n {
			p.dialing++
			p.mu.Unlock()
			pc, err := p.dial(deadline)
			p.mu.Lock()
			p.dialing--
			p.dialed.Broadcast()
			if err != nil {
				if best != nil && !best.broken.Load() {
					return best, nil
				}
				return nil, err
			}
			p.conns = append(p.conns, pc)
			if p.sweep == nil {
				p.sweep = time.AfterFunc(p.idle, p.closeIdleFor)
			}
			return pc, nil
		}
		// No connection yet, and every one allowed is being dialed.
		if start.IsZero() {
			start = time.Now()
		}
		p.dialed.Wait()
		if err := p.failedDial(start); err != nil {
			return nil, err
		}
	}
}

// dial opens a pipelined connection, TLS handshake included, by
// deadline (the sender's).
func (p *pipeline) dial(deadline time.Time) (*plConn, error) {
	conn, err := p.dialer.DialTimeout(p.addr, min(p.timeout, time.Until(deadline)))
	var raw net.Conn
	if err == nil {
		conn = rawsock.Wrap(conn)
		raw = conn
		if p.tls != nil {
			tc := tls.Client(conn, p.tls)
			_ = tc.SetDeadline(deadline)
			if err = tc.Handshake(); err != nil {
				conn.Close()
			} else {
				_ = tc.SetDeadline(time.Time{})
				conn = tc
			}
		}
	}
	if err != nil {
		p.failed.Store(&dialFailure{err: err, at: time.Now()})
		return nil, err
	}
	p.failed.Store(nil)
	try, _ := conn.(tryWriter) // not over TLS: conn is raw then
	pc := &plConn{p: p, c: conn, raw: raw, try: try, br: bufio.NewReaderSize(conn, 4096)}
	pc.bw = bufio.NewWriterSize(pendWriter{pc}, 4096)
	pc.idleAt.Store(mono())
	return pc, nil
}

// failedDial is the last dial's failure if it came at or after since.
func (p *pipeline) failedDial(since time.Time) error {
	if f := p.failed.Load(); f != nil && !f.at.Before(since) {
		return f.err
	}
	return nil
}

// closeIdle closes the connections with no request on them: DropIdle's
// and Close's, for a breaker's probe that must reach the target itself.
func (p *pipeline) closeIdle() { p.closeIdleSince(math.MaxInt64) }

// closeIdleFor is the sweep's: it closes the connections idle for
// idle_timeout, and comes back while any is open.
func (p *pipeline) closeIdleFor() {
	p.closeIdleSince(mono() - int64(p.idle))
}

// closeIdleSince closes the idle connections idle since before cutoff
// (mono ns; math.MaxInt64 for all of them).
func (p *pipeline) closeIdleSince(cutoff int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	open := p.conns[:0]
	for _, pc := range p.conns {
		if pc.inFlight.Load() == 0 && pc.idleAt.Load() < cutoff {
			pc.mu.Lock()
			if len(pc.q) == 0 {
				pc.breakLocked()
			}
			pc.mu.Unlock()
		}
		if !pc.broken.Load() {
			open = append(open, pc)
		}
	}
	clear(p.conns[len(open):])
	p.conns = open
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	if len(p.conns) > 0 {
		p.sweep = time.AfterFunc(p.idle, p.closeIdleFor)
	}
}

// enqueue writes req into the connection's buffer and queues w for its
// answer. lead: w is to read the answers (nothing else was in flight).
func (pc *plConn) enqueue(req *fasthttp.Request, w *plWait) (lead bool, err error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.broken.Load() {
		return false, errBroken
	}
	if len(pc.q) > 0 && w.short {
		return false, errUnpipelined
	}
	mark := len(pc.pend)
	if err = req.Write(pc.bw); err == nil {
		err = pc.bw.Flush() // into pend
	}
	if err != nil {
		// A request that cannot be written (a body stream's error): take
		// back what it left in pend.
		pc.bw.Reset(pendWriter{pc})
		pc.pend = pc.pend[:mark]
		return false, err
	}
	w.behind = len(pc.q) > 0
	pc.q = append(pc.q, w)
	pc.inFlight.Add(1)
	lead = !pc.lead
	pc.lead = true
	return lead, nil
}

// flush sends what the senders wrote, unless another sender is sending
// already: that one sends what joined meanwhile before it stops. It
// never waits for room in the send buffer: what the socket does not take
// at once, or all of it over TLS (which cannot tell), a goroutine of its
// own writes (finish). A sender waiting there could be the leader, or
// become it, and the target may have stopped reading requests until its
// answers are read: both would wait for the deadline.
func (pc *plConn) flush(deadline time.Time) {
	pc.mu.Lock()
	if pc.flushing {
		pc.mu.Unlock()
		return
	}
	pc.flushing = true
	for len(pc.pend) > 0 && !pc.broken.Load() {
		pc.out, pc.pend = pc.pend, pc.out[:0]
		pc.mu.Unlock()
		var n int
		var err error
		if pc.try != nil {
			n, err = pc.try.TryWrite(pc.out)
		}
		if err == nil && n < len(pc.out) {
			go pc.finish(n, deadline)
			return
		}
		pc.mu.Lock()
		if err != nil {
			// The leader's read fails on the closed connection and tells
			// every sender waiting.
			pc.breakLocked()
		}
	}
	pc.flushedLocked()
}

// finish is flush's goroutine: it writes out from sent on, waiting for
// room, then what joined meanwhile, and ends the flush.
func (pc *plConn) finish(sent int, deadline time.Time) {
	_ = pc.c.SetWriteDeadline(deadline)
	_, err := pc.c.Write(pc.out[sent:])
	pc.mu.Lock()
	for err == nil && len(pc.pend) > 0 && !pc.broken.Load() {
		pc.out, pc.pend = pc.pend, pc.out[:0]
		pc.mu.Unlock()
		_, err = pc.c.Write(pc.out)
		pc.mu.Lock()
	}
	if err != nil {
		pc.breakLocked()
	}
	pc.flushedLocked()
}

// flushedLocked ends a flush, under mu, and unlocks it.
func (pc *plConn) flushedLocked() {
	pc.pend = pc.pend[:0]
	if cap(pc.out) > maxKept {
		pc.out = nil // a burst of large requests: the buffer is not kept
	}
	pc.flushing = false
	pc.mu.Unlock()
}

// readAnswers reads answers in order, each into its sender's response,
// until me's is in; then the next sender waiting leads. On an error, or
// an answer that closes the connection, every sender still waiting is
// told its connection was lost.
func (pc *plConn) readAnswers(me *plWait) {
	for {
		pc.mu.Lock()
		head := pc.q[0] // only the leader takes from q
		pc.mu.Unlock()

		_ = pc.c.SetReadDeadline(head.deadline)
		head.resp.SkipBody = head.skipBody
		err := head.resp.ReadLimitBody(pc.br, pc.p.maxResponse)
		head.err = answerErr(err)
		if err == nil {
			pc.answers++
			if pc.answers == 2 {
				pc.p.refusals.Store(0) // the target keeps its connections
			}
		} else if head.behind && head.err == fasthttp.ErrTimeout {
			pc.p.late() // the answer ahead came; this one's did not, in time
		}

		pc.mu.Lock()
		n := copy(pc.q, pc.q[1:])
		pc.q[n] = nil
		pc.q = pc.q[:n]
		pc.inFlight.Add(-1)
		var rest []*plWait
		// After a 101 the connection speaks another protocol: what
		// follows is no answer to the requests behind.
		if err != nil || head.resp.ConnectionClose() || head.resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
			pc.breakLocked()
			rest = append(rest, pc.q...)
			clear(pc.q)
			pc.q = pc.q[:0]
			pc.inFlight.Store(0)
			if err == nil && pc.answers == 1 && len(rest) > 0 && head.resp.ConnectionClose() {
				pc.p.refused()
			}
		}
		var next *plWait
		if head == me || rest != nil {
			if len(pc.q) > 0 {
				next = pc.q[0]
			} else {
				pc.lead = false
				pc.idleAt.Store(mono())
			}
		}
		pc.mu.Unlock()

		done := head == me
		if head != me {
			head.signal <- false
		}
		for _, w := range rest {
			w.err = errLost
			if w == me {
				done = true
			} else {
				w.signal <- false
			}
		}
		if done {
			if next != nil {
				next.signal <- true
			}
			return
		}
	}
}

// refused counts a connection whose first answer closed it with requests
// waiting behind it, and turns the pipeline off at refusalsOff (see
// refusalsOff for what resets the count).
func (p *pipeline) refused() {
	if p.offUntil.Load() > mono() {
		return // the burst that turned it off, still coming back
	}
	if p.refusals.Add(1) == refusalsOff { // one sender turns it off, and tells
		p.refusals.Store(0)
		p.turnOff(whyClosed)
	}
}

// late counts a moment when a request queued behind another timed out,
// although the one ahead was answered: one a timeout, since a stall
// times out every connection's waiting request at once. At lateOff
// within lateWithin (or lateOff timeouts) it turns the pipeline off.
func (p *pipeline) late() { p.lateAt(mono()) }

// lateAt is late at now (mono ns).
func (p *pipeline) lateAt(now int64) {
	if p.offUntil.Load() > now {
		return
	}
	p.lateMu.Lock()
	defer p.lateMu.Unlock()
	if p.lates[lateOff-1] != 0 && now-p.lates[lateOff-1] < int64(p.timeout) {
		return // the moment counted already
	}
	copy(p.lates[:], p.lates[1:])
	p.lates[lateOff-1] = now
	if p.lates[0] != 0 && now-p.lates[0] <= int64(max(lateWithin, lateOff*p.timeout)) {
		clear(p.lates[:])
		p.turnOff(whyLate)
	}
}

// turnOff turns the pipeline off for offFor, and tells why.
func (p *pipeline) turnOff(why string) {
	p.offUntil.Store(mono() + int64(offFor))
	if p.off != nil {
		p.off(why)
	}
}

// breakLocked closes the connection: no request joins it from now on.
func (pc *plConn) breakLocked() {
	if !pc.broken.Swap(true) {
		_ = pc.raw.Close()
	}
}

// answerErr is what a read of an answer returned, as the host client
// would report it: a deadline is fasthttp's timeout.
func answerErr(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fasthttp.ErrTimeout
	}
	return err
}

// lostOnPipeline says whether a pipelined send failed because its
// connection went away (before or while its answer came), so that it may
// be sent once more on a fresh connection.
func lostOnPipeline(err error) bool {
	return err != nil && (errors.Is(err, errLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

// sendPipelined makes one pipelined round trip for req; see pipeline for
// the resend and the dial's errors.
func (c *Client) sendPipelined(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	p := c.pl
	if timeout <= 0 {
		// An oauth2 resend with no time left: queued, its write would
		// fail on its deadline and close the connection under the others.
		return fasthttp.ErrTimeout
	}
	start := time.Now()
	if p.failedDial(start.Add(-dialBackoff)) != nil || p.offUntil.Load() > monoAt(start) {
		return c.hc.DoTimeout(req, resp, timeout)
	}
	err := p.do(req, resp, timeout, start.Add(timeout))
	if err == errUnpipelined {
		return c.hc.DoTimeout(req, resp, timeout-time.Since(start))
	}
	if !lostOnPipeline(err) {
		return err
	}
	left := timeout - time.Since(start)
	if left <= 0 {
		return fasthttp.ErrTimeout
	}
	resp.Reset()
	return c.hc.DoTimeout(req, resp, left)
}
