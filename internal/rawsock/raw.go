//go:build linux && !race

package rawsock

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) without entersyscall; p is
// not empty.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// newBatcher is a batcher on a ring of the kernel's, or why there is none
// (batch.go).
func newBatcher() (*batcher, error) {
	u, err := newURing(ringEntries)
	if err != nil {
		return nil, err
	}
	if err := probeRing(u); err != nil {
		u.close()
		return nil, err
	}
	b := &batcher{ring: u, limit: u.entries, queue: make([]*ioReq, 0, u.entries), spare: make([]*ioReq, 0, u.entries)}
	failed := false // under b.submit
	b.run = func(q []*ioReq) {
		if failed {
			// Left of a batch whose ring failed, or from a caller that
			// took b just before: retried without the ring.
			for _, r := range q {
				r.n, r.errno = 0, syscall.EINTR
			}
			return
		}
		if !u.run(q) {
			// The ring is not closed: a call may still be reading it.
			failed = true
			turnOff(b, "io_uring_enter failed; every read and write is a system call of its own from now on")
		}
	}
	return b, nil
}
