//go:build linux

// Package rawsock reads and writes a TCP connection without Go's system
// call bookkeeping: the proxy's hot path, where every request is two reads
// and two writes on sockets whose peers are usually on the same host.
//
// Why: Go's runtime wraps each blocking-capable system call in
// entersyscall/exitsyscall. While the goroutine's P is "in a system call",
// the runtime's sysmon thread may take the P away from it if the call spans
// two of its ticks (20 µs and up), handing the P to another thread; the
// thread whose call returned then parks, and is woken again later. A write
// to a loopback socket runs the receiver's TCP input path inside the
// writer's call and wakes the receiver, which on a shared core often runs
// before the writer's call returns: such writes routinely take longer than
// a sysmon tick. And a system call made while sysmon sleeps deeply (the
// process was idle) wakes sysmon, which then polls every 20 µs for a
// millisecond. On the one core a sidecar usually gets, under passthrough
// load, the gateway switched threads 8.5k times a second with them and 2.0k
// without, and its CPU per request fell by about 10% (benchmarks/HISTORY.md,
// sixth run); nginx, one thread in an event loop, has none of them.
//
// A read or write on a non-blocking socket cannot block: it moves what is
// there, or fails with EAGAIN. So it is made with syscall.RawSyscall
// (no entersyscall) inside syscall.RawConn.Read/Write, which hold the
// runtime's reference on the descriptor (a concurrent Close cannot let its
// number be reused under the call), apply the connection's deadlines, and
// wait in the netpoller on EAGAIN, exactly as net.Conn does. What a raw
// call gives up, and how that is bounded:
//   - It cannot be preempted, so a stop-the-world waits for it to return:
//     each call moves at most maxRaw bytes (a few tens of microseconds on
//     loopback), and the loop between calls is ordinary Go code.
//   - The race detector does not see the buffer it touches: built with
//     -race, the calls go through syscall.Read/Write instead (race.go), so
//     the tests still check the buffers' use.
//
// Deadlines far ahead (more than a second, fasthttp's timeouts) are kept
// lazily, in the Conn, and handed to the runtime only when they expire
// (deadline.go): that saves the timer updates of five deadline sets a
// proxied request. A Conn's deadlines must be set, and the Conn closed,
// through it, never through the connection it wraps: a Conn closed
// underneath stays in the sweeper's set.
//
// A client's connection (WrapClient) also sends a request when its answer
// is read, not when it is written, and a server's (WrapServer) an answer
// when the next request is read: each saves a read(2) a request that
// would find nothing (ask.go).
//
// Where the kernel has io_uring, the reads and writes that the goroutines
// runnable at one moment make go to the kernel together, in one system
// call, rather than one each (batch.go): the fixed price of a system call,
// and the wake-ups of a target that shares the core, are paid once a
// batch. HOOKGATE_IO_URING=off turns that off.
//
// Errors have net.Conn's shape: a deadline or a closed connection is the
// *net.OpError the runtime builds (with the connection's network, "tcp4"
// say), with Op "read" or "write"; an errno is a *net.OpError around an
// *os.SyscallError, whose Net is "tcp" (net would give the network the
// connection was dialed with). Callers that classify errors (EPIPE,
// ECONNRESET, timeouts, net.ErrClosed, io.EOF) see no difference.
package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxRaw bounds the bytes of one raw call, and so the time a
// stop-the-world can wait for it.
const maxRaw = 256 << 10

// Conn is a *net.TCPConn whose Read and Write bypass entersyscall. Like a
// net.Conn, it may be used from several goroutines at once.
type Conn struct {
	net.Conn
	rc syscall.RawConn
	r  op
	w  op

	set atomic.Int32 // notInSet, inSet or closed: the sweeper's set (deadline.go)

	ask ask // a client's connection: writes wait for the next Read (ask.go)
}

// op is one direction's state. mu makes concurrent Reads (or Writes) wait
// for each other, as net.Conn's descriptor lock does, since the buffer is
// handed to the callback here, before RawConn takes that lock. fn is
// op.read or op.write bound once, so a call allocates nothing.
type op struct {
	mu    sync.Mutex
	fn    func(fd uintptr) bool
	tryFn func(fd uintptr) bool // a write's that does not wait (TryWrite)
	p     []byte
	n     int
	err   error // an errno, or io.ErrUnexpectedEOF for a write of nothing
	// short: the last read(2) returned less than it asked for, so the
	// socket was empty then (a server's guard, ask.go).
	short bool

	io    ioReq                   // its system calls, batched (batch.go)
	dl    deadline                // this direction's deadline (deadline.go)
	apply func(t time.Time) error // the runtime's setter for it
}

// Wrap returns c as a *Conn when it is a *net.TCPConn, and c itself
// otherwise (a TLS connection, a pipe, a datagram socket...). Wrap below a
// TLS layer, not above it.
func Wrap(c net.Conn) net.Conn {
	w := wrap(c)
	if w == nil {
		return c
	}
	return w
}

func wrap(c net.Conn) *Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &Conn{Conn: c, rc: rc}
	w.r.fn = w.r.read
	w.r.io.done = make(chan struct{}, 1)
	w.w.io.done = make(chan struct{}, 1)
	w.w.fn = w.w.write
	w.w.tryFn = w.w.tryWrite
	w.r.apply = tc.SetReadDeadline
	w.w.apply = tc.SetWriteDeadline
	return w
}

// Read reads as net.Conn.Read does: what is there, waiting for something
// if nothing is; io.EOF once the peer has closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p) // net's answers for an empty read; rare
	}
	o := &c.r
	o.mu.Lock()
	o.p, o.n, o.err = p, 0, nil
	var err error
	if c.ask.on {
		var werr error
		if err, werr = c.readAsking(); werr != nil {
			o.p = nil
			o.mu.Unlock()
			return 0, werr
		}
	} else {
		err = c.rc.Read(o.fn)
	}
	n, oerr := o.n, o.err
	o.p = nil
	o.mu.Unlock()
	switch {
	case err != nil: // a deadline, or the connection was closed
		return n, c.fromRuntime("read", err)
	case oerr != nil:
		return n, c.opError("read", oerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes p whole, as net.Conn.Write does, or says why not with how
// much was written.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Write(p)
	}
	o := &c.w
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.ask.on {
		if c.hold(p) {
			return len(p), nil
		}
		// Too much to hold (or closed): what is held goes first, then p,
		// now; the next Read reads first (ask.go).
		c.ask.wrote = true
		if err := c.sendLocked(c.ask.held); err != nil {
			return 0, err
		}
	}
	return c.writeLocked(p)
}

// TryWrite writes what of p the send buffer takes now, without waiting
// for room: fewer than len(p) bytes and a nil error mean it is full. For
// a writer that must not wait on the peer, such as a pipelined client's
// sender, who may be the one to read the answers the peer is waiting to
// send before it reads on. Not for a connection that holds its writes
// (WrapClient, WrapServer).
func (c *Conn) TryWrite(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o := &c.w
	o.mu.Lock()
	defer o.mu.Unlock()
	return c.writeWith(p, o.tryFn)
}

// writeLocked writes p whole through the runtime (waiting for room in the
// send buffer), under c.w.mu.
func (c *Conn) writeLocked(p []byte) (int, error) {
	return c.writeWith(p, c.w.fn)
}

// writeWith writes p through the runtime with fn as the callback, under
// c.w.mu.
func (c *Conn) writeWith(p []byte, fn func(fd uintptr) bool) (int, error) {
	o := &c.w
	o.p, o.n, o.err = p, 0, nil
	err := c.rc.Write(fn)
	n, oerr := o.n, o.err
	o.p = nil
	switch {
	case err != nil:
		return n, c.fromRuntime("write", err)
	case oerr != nil:
		return n, c.opError("write", oerr)
	}
	return n, nil
}

// fromRuntime gives an error of RawConn.Read/Write net.Conn's Op: the
// runtime reports it as "raw-read" or "raw-write".
func (c *Conn) fromRuntime(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return c.opError(op, err)
}

func (c *Conn) opError(op string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// read is RawConn.Read's callback: false asks it to wait until the socket
// is readable and call again. One read: a short one is an answer.
func (o *op) read(fd uintptr) bool {
	p := o.p
	if len(p) > maxRaw {
		p = p[:maxRaw]
	}
	for {
		r, e := o.io.read(fd, p)
		switch e {
		case 0:
			o.n, o.short = r, r < len(p)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.err = e
			return true
		}
	}
}

// tryWrite is TryWrite's callback: write's, never waiting.
func (o *op) tryWrite(fd uintptr) bool {
	o.write(fd)
	return true
}

// write is RawConn.Write's callback: it writes until p is gone, and
// returns false to wait for room in the send buffer.
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.p) {
		p := o.p[o.n:]
		if len(p) > maxRaw {
			p = p[:maxRaw]
		}
		r, e := o.io.write(fd, p)
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false
		case e != 0:
			o.err = e
			return true
		case r <= 0 || r > len(p):
			// Not something a socket does; internal/poll's answer for a
			// write of nothing, rather than spinning here.
			o.err = io.ErrUnexpectedEOF
			return true
		default:
			o.n += r
		}
	}
	return true
}
