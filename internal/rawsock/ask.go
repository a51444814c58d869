//go:build linux

package rawsock

import (
	"errors"
	"net"
	"os"
	"time"
)

// A client's connection: the question is sent when the answer is awaited.
//
// Why: an HTTP client writes a request and then reads its answer. Read
// first tries the socket and, finding nothing (the target has not even
// run yet when it shares the core, and is a network away otherwise),
// waits in the poller: one read(2) a request that only ever finds EAGAIN,
// about 1.1 µs on this project's benchmark machine (page-table isolation
// without PCID makes every system call pay for the TLB), plus the TLB
// misses after it.
//
// Why the read cannot just be skipped: the runtime clears a socket's
// readiness before the callback of RawConn.Read runs (poll.FD.RawRead
// calls prepareRead), so a callback that waited without reading would
// miss an answer whose wake-up came before. The client avoids the race by
// ordering: Write only holds the bytes, and Read sends them from inside
// its callback, after the readiness was cleared, then waits. An answer
// can only come after the question, so its wake-up comes after the
// clearing and reaches the wait: the read that finds nothing is gone, and
// no wake-up is lost.
//
// What it assumes, and the guards:
//   - The peer speaks only when spoken to, and only once it has the whole
//     request. A request partly written already (one larger than maxHeld:
//     the part that did not fit went out in Write) may have been answered
//     early, a 413 or a 401 from the head alone, so its Read reads first.
//   - A peer that closes makes a wake-up after the question: a closed
//     socket answers data with a reset. One whose FIN came before the
//     question, and that then makes none (it half-closed and reads on,
//     or its host went away without a reset), would leave the wait to
//     the read deadline, where the plain path would have read the FIN at
//     once and retried on a fresh connection. So only a connection that
//     was idle less than askIdle since its last answer waits first: the
//     hot connections of a busy pool (the saving matters under load
//     only), whose FIN would have to arrive within those milliseconds.
//     A connection idle longer writes and reads first, as any does.
//   - Not below TLS: crypto/tls writes alerts just before Close, and can
//     write in the middle of reading an answer (a KeyUpdate), so nothing
//     may be held there. Targets over https use Wrap.
//   - One request at a time, as an HTTP/1.1 client without pipelining:
//     a Read waits for a Write that is waiting for room, and a Write made
//     while a Read waits is sent by the next Read.
//
// A server's connection (WrapServer) does the same with its answers: a
// server writes an answer and then reads the next request, which a
// sender that waits for each answer has not sent yet. There the ordering
// argument covers less, since a sender may speak before it is answered:
// it may pipeline its next request, or half-close (a FIN), while the
// answer is being made, and the wake-up of those bytes comes before the
// runtime's clearing and is lost. So:
//   - Only a connection whose last read(2) emptied the socket (returned
//     less than it asked for) waits first: bytes that were there already
//     made no wake-up since, and would wait forever.
//   - The sweeper pokes a wait that has lasted a full tick (100 to 200
//     ms, see deadline.go): it ends it with a deadline in the past, and
//     the Read reads. If that read finds something at once, a wake-up
//     was lost, and the connection never waits first again: a sender that
//     pipelines (or half-closes) is delayed once, by at most two ticks.
//     An idle keep-alive connection costs one such read per idle spell.
//   - A connection outside the sweeper's set (one without a lazy
//     deadline, so no poke) reads first, as any does; one whose read
//     deadline the runtime holds (near, as an idle_timeout under a
//     second makes it, or expired) reads right after its send.
//   - What is held must still go out when no Read follows: the last
//     answer before a close, or the one fasthttp's Shutdown sweeps up.
//     Close and CloseWrite send it first. A Close from another goroutine
//     (Shutdown closing a connection fasthttp counts as idle, whose
//     answer a Read is sending into a full send buffer: a sender that
//     does not read) cuts that send short, as it would a plain Write,
//     rather than wait for the write deadline.
//   - What it costs where it does not pay: an idle spell longer than a
//     tick costs a poke (two deadline updates, a wake-up and a read that
//     finds nothing), more than the read it saved; a request that
//     arrives just as a poke comes is taken for a lost wake-up, and its
//     connection reads first from then on, as before this change.
//   - One answer at a time, as an HTTP/1.1 server: a Write made while a
//     Read waits is sent by the next Read, and a concurrent
//     SetReadDeadline does not reach a wait under way (fasthttp does
//     neither).

// maxHeld bounds what Write holds for the next Read: a larger request
// (a large body) is written at once, and its answer read as usual; the
// read saved matters less beside it.
const maxHeld = 16 << 10

// askIdle is how long a connection may have been idle since its last
// answer and still wait first; a variable for tests. A pool's hot
// connections under load are idle for well under a millisecond.
var askIdle = 10 * time.Millisecond

// ask is the state of a connection that holds its writes (WrapClient,
// WrapServer).
type ask struct {
	on      bool
	server  bool                  // WrapServer's: its own guards (above)
	fn      func(fd uintptr) bool // Conn.askRead bound once
	pokedFn func(fd uintptr) bool // Conn.pokedRead bound once

	// Under w.mu: the bytes Write held, and whether Write sent some of
	// this request itself (it did not fit).
	held  []byte
	wrote bool
	shut  bool // CloseWrite was called: nothing more is held

	// Under r.mu.
	last    int64 // a client's: ns since epoch when the last Read returned
	pending bool  // the callback holds w.mu and has held to send (in w.p)
	// A server's: the sweeper's poke ended a wait and the next read is
	// the first after it (afterPoke); one found something at once (lost).
	afterPoke bool
	lost      bool
	waited    int // waits without reading so far, for tests
}

// WrapClient is Wrap for a plain TCP connection whose peer speaks only
// when spoken to, such as an HTTP/1.1 client's connection to its server:
// Write holds the bytes (up to maxHeld) and the next Read sends them
// before it waits for the answer, saving a read(2) that would find
// nothing. Writes that are never followed by a Read are never sent, so
// the caller must read after writing, as a request-response client does,
// and must not put TLS on top (see the guards above).
func WrapClient(c net.Conn) net.Conn {
	w := wrap(c)
	if w == nil {
		return c
	}
	w.ask.on = true
	w.ask.fn = w.askRead
	w.ask.last = int64(time.Since(epoch))
	return w
}

// WrapServer is Wrap for a plain TCP connection a server accepted, whose
// peer sends a request and waits for its answer, as HTTP/1.1 senders do:
// Write holds the answer (up to maxHeld) and the next Read sends it
// before it waits for the next request, saving a read(2) that would find
// nothing. Close and CloseWrite send what is held first. The guards for
// a peer that does not wait (pipelining, half-closing) are above.
func WrapServer(c net.Conn) net.Conn {
	w := wrap(c)
	if w == nil {
		return c
	}
	w.ask.on, w.ask.server = true, true
	w.ask.fn = w.askRead
	w.ask.pokedFn = w.pokedRead
	return w
}

// waitFirst reports whether this Read may send what is held and wait
// without reading first; under r.mu.
func (c *Conn) waitFirst() bool {
	a := &c.ask
	if a.server {
		return c.r.short && !a.lost && c.set.Load() == inSet
	}
	return int64(time.Since(epoch))-a.last < int64(askIdle)
}

// hold keeps p for the next Read, under c.w.mu. It reports false when it
// would hold more than maxHeld, or the connection is closed or shut for
// writing (so that the Write fails as net.Conn's does).
func (c *Conn) hold(p []byte) bool {
	a := &c.ask
	if len(a.held)+len(p) > maxHeld || a.shut || c.set.Load() == closed {
		return false
	}
	a.held = append(a.held, p...)
	return true
}

// readAsking is Read's RawConn.Read for a client's connection, with c.r.mu
// held and c.r.p set. It returns the runtime's error as RawConn.Read does,
// and an error of sending the held bytes apart: a write's (Op "write"),
// what a plain Write would have returned. (fasthttp reports any failure
// before an answer's first byte as io.EOF, which gateway/target retries
// once on a fresh connection: the request did not reach the target
// whole, so the retry cannot repeat it.)
func (c *Conn) readAsking() (rerr, werr error) {
	rerr, werr = c.sendAndWait()
	if !c.ask.server {
		c.ask.last = int64(time.Since(epoch)) // the idle time starts
	}
	return rerr, werr
}

// sendAndWait is readAsking but for the time stamp.
func (c *Conn) sendAndWait() (rerr, werr error) {
	a := &c.ask
	first := c.waitFirst()
	c.w.mu.Lock()
	wrote := a.wrote
	a.wrote = false
	switch {
	case len(a.held) == 0:
		c.w.mu.Unlock()
		return c.rc.Read(c.r.fn), nil
	case !first || wrote:
		werr = c.sendLocked(a.held)
		c.w.mu.Unlock()
		if werr != nil {
			return nil, werr
		}
		return c.rc.Read(c.r.fn), nil
	}
	w := &c.w
	w.p, w.n, w.err = a.held, 0, nil
	a.pending = true
	rerr = c.rc.Read(a.fn)
	if !a.pending {
		// Sent; rerr is the wait's (a deadline, a Close).
		if a.server {
			rerr = c.afterWait(rerr)
		}
		return rerr, nil
	}
	// Not all sent, and w.mu still held: the runtime failed before the
	// callback ran, the send failed, or the send buffer was full.
	a.pending = false
	sent, err := w.n, w.err
	w.p = nil
	switch {
	case rerr != nil:
		// A deadline or a Close before anything went: the bytes stay
		// held, as a Write that returned would have sent them, for a
		// Read after the deadline is moved.
		c.w.mu.Unlock()
		return rerr, nil
	case err != nil:
		a.held = a.held[:0]
		c.w.mu.Unlock()
		return nil, c.opError("write", err)
	}
	// Part of the question went out and the peer may answer it early:
	// the rest is written as Write does, and the answer read first.
	werr = c.sendLocked(a.held[sent:])
	c.w.mu.Unlock()
	if werr != nil {
		return nil, werr
	}
	return c.rc.Read(c.r.fn), nil
}

// sendLocked writes p as Write does, waiting for room, and empties held;
// under c.w.mu.
func (c *Conn) sendLocked(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := c.writeLocked(p)
	c.ask.held = c.ask.held[:0]
	return err
}

// askRead is readAsking's callback. Its first call, made after the
// runtime cleared the socket's readiness, sends the held bytes and
// returns false, to wait for the answer without reading first; the calls
// after a wake-up read. If the send cannot finish without waiting (a full
// send buffer) or fails, it returns true with w.mu still held, and
// readAsking finishes.
func (c *Conn) askRead(fd uintptr) bool {
	a := &c.ask
	if !a.pending {
		return c.r.read(fd)
	}
	w := &c.w
	if !w.write(fd) || w.err != nil {
		return true // no room, or the send failed: readAsking finishes
	}
	w.p = nil
	a.held = a.held[:0]
	a.pending = false
	w.mu.Unlock()
	if a.server && !c.r.dl.watch() {
		// The runtime holds the read deadline, so no poke could come
		// (a near idle_timeout, say): read now, as a plain Read does,
		// after the send, so that what came before is found.
		return c.r.read(fd)
	}
	a.waited++ // the sweeper may poke this wait from now on (a server's)
	return false
}

// afterWait ends a server's wait without reading (under r.mu): it takes
// the wait off the sweeper's watch, and when the sweeper's poke is what
// ended it, reads as a plain Read does, noting whether a wake-up was
// lost. rerr is the wait's error, and the result the Read's.
func (c *Conn) afterWait(rerr error) error {
	if !c.r.dl.unwatch(c.r.apply) || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		return rerr // ended by the peer's bytes, a Close, or a deadline
	}
	c.ask.afterPoke = true
	return c.rc.Read(c.ask.pokedFn)
}

// pokedRead is afterWait's callback: a plain read, whose first call tells
// whether something was waiting when the poke came.
func (c *Conn) pokedRead(fd uintptr) bool {
	done := c.r.read(fd)
	if c.ask.afterPoke {
		c.ask.afterPoke = false
		c.ask.lost = done // bytes, a FIN or an error, whose wake-up was lost
	}
	return done
}

// flush sends what a server's connection holds, for Close and CloseWrite.
//
// It must not skip what a Read holds w.mu to send: the Read may yet fail
// before sending (the descriptor closed under it). Nor may it wait behind
// a send that waits for room (a sender that does not read): w.mu is held
// then until the write deadline, and fasthttp's Shutdown, which calls
// Close for a connection it counts as idle once the answer is handed
// over, would wait as long. So when w.mu is taken, a write deadline in
// the past cuts a waiting send short, as Close cuts a plain Write short,
// while a send in progress in the callback (raw calls do not look at
// deadlines) completes.
func (c *Conn) flush() error {
	if !c.ask.server {
		return nil
	}
	if !c.w.mu.TryLock() {
		c.SetWriteDeadline(epoch.Add(-time.Second))
		c.w.mu.Lock()
	}
	defer c.w.mu.Unlock()
	return c.sendLocked(c.ask.held)
}

// CloseWrite shuts down the sending side, as *net.TCPConn's does, after
// sending what a server's connection holds. A Write after it fails, as on
// the plain connection (EPIPE), instead of being held.
func (c *Conn) CloseWrite() error {
	if err := c.flush(); err != nil {
		return err
	}
	c.w.mu.Lock()
	c.ask.shut = true
	c.w.mu.Unlock()
	return c.Conn.(*net.TCPConn).CloseWrite()
}
