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
// millisecond. On the one core a sidecar usually gets, profiles showed
// these thread switches and sysmon's wake-ups as 5-10% of a forwarded
// request's CPU; nginx, one thread in an event loop, pays none of it.
//
// A read or write on a non-blocking socket cannot block: it moves what is
// there, or fails with EAGAIN. So it is made with syscall.RawSyscall
// (no entersyscall) inside syscall.RawConn.Read/Write, which hold the
// runtime's reference on the descriptor (a concurrent Close cannot let its
// number be reused under the call), apply the connection's deadlines, and
// wait in the netpoller on EAGAIN, exactly as net.Conn does. Errors are
// wrapped as net.Conn wraps them (*net.OpError around *os.SyscallError),
// so callers that classify them (EPIPE, ECONNRESET, timeouts) see no
// difference.
package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn is a net.Conn whose Read and Write bypass entersyscall. Like a
// net.Conn's, its Read and its Write may run at the same time as each other,
// but not each with itself.
type Conn struct {
	net.Conn
	rc syscall.RawConn
	r  op
	w  op
}

// op is one direction's state, touched only by its Read or Write; fn is
// op.read or op.write bound once, so a call allocates nothing.
type op struct {
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err syscall.Errno
}

// Wrap returns c as a *Conn, or c itself when it is not a socket the
// runtime polls (a TLS connection or an in-memory pipe, say).
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc}
	w.r.fn = w.r.read
	w.w.fn = w.w.write
	return w
}

// Read reads as net.Conn.Read does: what is there, waiting for something
// if nothing is; io.EOF once the peer has closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.r.p, c.r.n, c.r.err = p, 0, 0
	err := c.rc.Read(c.r.fn)
	n, errno := c.r.n, c.r.err
	c.r.p = nil
	switch {
	case err != nil: // a deadline, or the connection was closed
		return n, c.opError("read", err)
	case errno != 0:
		return n, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes p whole, as net.Conn.Write does.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.w.p, c.w.n, c.w.err = p, 0, 0
	err := c.rc.Write(c.w.fn)
	n, errno := c.w.n, c.w.err
	c.w.p = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// read is RawConn.Read's callback: false asks it to wait until the socket
// is readable and call again. One read: a short one is an answer.
func (o *op) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
			o.n = int(r)
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

// write is RawConn.Write's callback: it writes until p is gone, and
// returns false to wait for room in the send buffer.
func (o *op) write(fd uintptr) bool {
	for o.n < len(o.p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.p[o.n])), uintptr(len(o.p)-o.n))
		switch e {
		case 0:
			o.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.err = e
			return true
		}
	}
	return true
}
