//go:build linux

package rawsock

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// A minimal io_uring (io_uring_setup(2), io_uring_enter(2)): one ring
// whose submissions are the batcher's sends and receives, made and reaped
// by one goroutine at a time (batcher.submit). Only what batch.go needs:
// no polling thread, no registered buffers, no waiting in the kernel.

const (
	sysIOUringSetup = 425
	sysIOUringEnter = 426

	opSend = 26 // IORING_OP_SEND (Linux 5.6)
	opRecv = 27 // IORING_OP_RECV (Linux 5.6)

	enterGetEvents = 1 << 0     // IORING_ENTER_GETEVENTS
	setupSubmitAll = 1 << 7     // IORING_SETUP_SUBMIT_ALL (Linux 5.18)
	featSingleMmap = 1 << 0     // IORING_FEAT_SINGLE_MMAP (Linux 5.4)
	offSQRing      = 0          // IORING_OFF_SQ_RING
	offSQEs        = 0x10000000 // IORING_OFF_SQES

	msgDontWait = 0x40
	msgNoSignal = 0x4000

	// ringEntries bounds the calls of one submission: one io_uring_enter
	// is a raw call too (a stop-the-world waits for it), and a loopback
	// write took 3.9-7.4 µs on average (twenty-seventh run), so 64 come
	// to some hundreds of microseconds. The batches under load held 10 to
	// 33 calls (benchmarks/HISTORY.md, thirtieth run).
	ringEntries = 64
)

// The kernel's structures (include/uapi/linux/io_uring.h).
type (
	uringSQOff struct {
		head, tail, mask, entries, flags, dropped, array, resv1 uint32
		user                                                    uint64
	}
	uringCQOff struct {
		head, tail, mask, entries, overflow, cqes, flags, resv1 uint32
		user                                                    uint64
	}
	uringParams struct {
		sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
		resv                                                                   [3]uint32
		sq                                                                     uringSQOff
		cq                                                                     uringCQOff
	}
	uringSQE struct {
		opcode, flags uint8
		ioprio        uint16
		fd            int32
		off, addr     uint64
		len, opFlags  uint32
		userData      uint64
		bufIndex      uint16
		personality   uint16
		spliceFdIn    int32
		addr3, pad    uint64
	}
	uringCQE struct {
		userData uint64
		res      int32
		flags    uint32
	}
)

type uring struct {
	fd                     uintptr
	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []uringSQE
	cqHead, cqTail, cqMask *uint32
	cqes                   []uringCQE
	entries                int
	mem                    [2][]byte // the mappings, for close
}

// newURing sets up a ring of n entries, or says why it cannot.
func newURing(n uint32) (*uring, error) {
	var p uringParams
	p.flags = setupSubmitAll
	fd, _, e := syscall.Syscall(sysIOUringSetup, uintptr(n), uintptr(unsafe.Pointer(&p)), 0)
	if e == syscall.EINVAL { // before 5.18: no SUBMIT_ALL, which probeRing makes up for
		p = uringParams{}
		fd, _, e = syscall.Syscall(sysIOUringSetup, uintptr(n), uintptr(unsafe.Pointer(&p)), 0)
	}
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", e)
	}
	if p.features&featSingleMmap == 0 {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("io_uring: the kernel is older than 5.4")
	}
	size := int(p.sq.array + p.sqEntries*4)
	if cq := int(p.cq.cqes + p.cqEntries*uint32(unsafe.Sizeof(uringCQE{}))); cq > size {
		size = cq
	}
	rm, err := syscall.Mmap(int(fd), offSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("io_uring: mmap: %w", err)
	}
	sm, err := syscall.Mmap(int(fd), offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Munmap(rm)
		syscall.Close(int(fd))
		return nil, fmt.Errorf("io_uring: mmap: %w", err)
	}
	b := unsafe.Pointer(&rm[0])
	return &uring{
		fd:      fd,
		sqHead:  (*uint32)(unsafe.Add(b, p.sq.head)),
		sqTail:  (*uint32)(unsafe.Add(b, p.sq.tail)),
		sqMask:  (*uint32)(unsafe.Add(b, p.sq.mask)),
		sqArray: unsafe.Slice((*uint32)(unsafe.Add(b, p.sq.array)), p.sqEntries),
		sqes:    unsafe.Slice((*uringSQE)(unsafe.Pointer(&sm[0])), p.sqEntries),
		cqHead:  (*uint32)(unsafe.Add(b, p.cq.head)),
		cqTail:  (*uint32)(unsafe.Add(b, p.cq.tail)),
		cqMask:  (*uint32)(unsafe.Add(b, p.cq.mask)),
		cqes:    unsafe.Slice((*uringCQE)(unsafe.Add(b, p.cq.cqes)), p.cqEntries),
		entries: int(p.sqEntries),
		mem:     [2][]byte{rm, sm},
	}, nil
}

func (u *uring) close() {
	syscall.Munmap(u.mem[0])
	syscall.Munmap(u.mem[1])
	syscall.Close(int(u.fd))
}

// run makes q's calls (len(q) <= u.entries) and sets each one's n and
// errno. It reports false when the ring failed (io_uring_enter itself
// returned an error it cannot retry): the calls it could not submit then
// have errno EINTR, which their callers retry, and the ring must not be
// used again.
func (u *uring) run(q []*ioReq) bool {
	u.queue(q)
	// Submit: a raw call, like the reads and writes it replaces, since
	// none of them waits. The calls normally finish inside it.
	submitted, got, ok := 0, 0, true
	for submitted < len(q) {
		n, _, e := syscall.RawSyscall6(sysIOUringEnter, u.fd, uintptr(len(q)-submitted), 0, 0, 0, 0)
		if e == 0 {
			submitted += int(n)
			continue
		}
		if e == syscall.EINTR || e == syscall.EAGAIN || e == syscall.EBUSY {
			// Nothing taken this time (the kernel short of memory, say):
			// take what completed, let others run, and try again.
			got += u.reap(q)
			runtime.Gosched()
			continue
		}
		// Withdraw what the kernel did not take, and let the callers
		// retry it without the ring.
		atomic.StoreUint32(u.sqTail, atomic.LoadUint32(u.sqHead))
		ok = false
		break
	}
	got += u.reap(q)
	for got < submitted {
		// A call the kernel did not finish inline (it should not: every
		// call says MSG_DONTWAIT, and probeRing checked the kernel keeps
		// to it): wait for it, since its buffer is the caller's.
		_, _, e := syscall.Syscall6(sysIOUringEnter, u.fd, 0, uintptr(submitted-got), enterGetEvents, 0, 0)
		if e != 0 && e != syscall.EINTR && e != syscall.EAGAIN && e != syscall.EBUSY {
			// The kernel still holds the callers' buffers and the ring
			// cannot say when it lets go: going on would let it write
			// into memory Go reuses.
			panic(fmt.Sprintf("rawsock: io_uring_enter waiting for %d calls: %v", submitted-got, e))
		}
		got += u.reap(q)
	}
	for _, r := range q {
		if r.n < 0 { // not submitted
			r.n, r.errno = 0, syscall.EINTR
		}
	}
	return ok
}

// queue puts q's calls in the submission queue, for the next
// io_uring_enter; a completion's userData is its call's index in q, and
// each call's n is -1 until its completion is reaped.
func (u *uring) queue(q []*ioReq) {
	tail := atomic.LoadUint32(u.sqTail)
	mask := *u.sqMask
	for i, r := range q {
		r.n = -1
		idx := (tail + uint32(i)) & mask
		u.sqes[idx] = uringSQE{opcode: r.op, fd: int32(r.fd), addr: uint64(uintptr(unsafe.Pointer(&r.p[0]))),
			len: uint32(len(r.p)), opFlags: r.flags, userData: uint64(i)}
		u.sqArray[idx] = idx
	}
	atomic.StoreUint32(u.sqTail, tail+uint32(len(q)))
}

// reap takes the completions there are, and returns how many.
func (u *uring) reap(q []*ioReq) int {
	head := atomic.LoadUint32(u.cqHead)
	tail := atomic.LoadUint32(u.cqTail)
	n := 0
	for ; head != tail; head++ {
		c := &u.cqes[head&*u.cqMask]
		r := q[c.userData]
		if c.res < 0 {
			r.n, r.errno = 0, syscall.Errno(-c.res)
		} else {
			r.n, r.errno = int(c.res), 0
		}
		n++
	}
	atomic.StoreUint32(u.cqHead, head)
	return n
}

// The probe's buffers, in static memory: a buffer on a goroutine's stack
// could move while the kernel holds it.
var (
	probeMsg = [...]byte{'p', 'r', 'o', 'b', 'e'}
	probeBuf [64]byte
)

// probeRing checks that u does what the batcher needs, on a socket pair:
// sends and receives arrive whole, and a receive on an empty socket or a
// send to a full one finishes at once with EAGAIN, inside the call that
// submits it. A kernel that would wait in the background instead (the
// calls' MSG_DONTWAIT ignored) fails the probe.
func probeRing(u *uring) error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("io_uring probe: socketpair: %w", err)
	}
	a, b := uintptr(fds[0]), uintptr(fds[1])
	open := true
	defer func() {
		if open {
			syscall.Close(fds[0])
			syscall.Close(fds[1])
		}
	}()
	msg, buf := probeMsg[:], probeBuf[:]
	one := func(op uint8, flags uint32, fd uintptr, p []byte) (int, syscall.Errno, error) {
		q := []*ioReq{{op: op, flags: flags, fd: fd, p: p}}
		r := q[0]
		u.queue(q)
		// Not run: it would wait for a call gone to the background, which
		// is what the probe must see.
		if _, _, e := syscall.Syscall6(sysIOUringEnter, u.fd, 1, 0, 0, 0, 0); e != 0 {
			atomic.StoreUint32(u.sqTail, atomic.LoadUint32(u.sqHead))
			return 0, 0, fmt.Errorf("io_uring_enter: %w", e)
		}
		if u.reap(q) == 1 {
			return r.n, r.errno, nil
		}
		// Pending in the background: closing the pair ends it.
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		open = false
		syscall.Syscall6(sysIOUringEnter, u.fd, 0, 1, enterGetEvents, 0, 0)
		u.reap(q)
		return 0, 0, fmt.Errorf("io_uring: a call that must not wait went to the background")
	}
	check := func(what string, n int, e syscall.Errno, err error, wantN int, wantE syscall.Errno) error {
		if err != nil {
			return err
		}
		if n != wantN || e != wantE {
			return fmt.Errorf("io_uring probe: %s gave %d, %v; want %d, %v", what, n, e, wantN, wantE)
		}
		return nil
	}
	n, e, err := one(opSend, msgDontWait|msgNoSignal, a, msg)
	if err := check("a send", n, e, err, len(msg), 0); err != nil {
		return err
	}
	n, e, err = one(opRecv, msgDontWait, b, buf)
	if err := check("a receive", n, e, err, len(msg), 0); err != nil {
		return err
	}
	if string(buf[:n]) != string(msg) {
		return fmt.Errorf("io_uring probe: received %q; want %q", buf[:n], msg)
	}
	n, e, err = one(opRecv, msgDontWait, b, buf)
	if err := check("a receive on an empty socket", n, e, err, 0, syscall.EAGAIN); err != nil {
		return err
	}
	for { // fill the pair
		if _, err := syscall.Write(fds[0], buf); err == syscall.EAGAIN {
			break
		} else if err != nil {
			return fmt.Errorf("io_uring probe: filling the socket pair: %w", err)
		}
	}
	n, e, err = one(opSend, msgDontWait|msgNoSignal, a, msg)
	return check("a send to a full socket", n, e, err, 0, syscall.EAGAIN)
}
