//go:build linux

package rawsock

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// Batched system calls: the reads and writes that the goroutines runnable
// at one moment make on their connections go to the kernel together, in
// one io_uring_enter(2), instead of one read(2) or write(2) each.
//
// Why: a system call costs its caller a fixed price on top of its work,
// about 1.2 µs on this project's benchmark machine (a virtual machine
// whose guest kernel is entered through the hypervisor), where a proxied
// request makes four: about a fifth of a request's CPU. And on a core it
// shares with its target, each write that wakes the target lets it run
// at once, for one request, before the writer goes on: the "ping-pong"
// benchmarks/HISTORY.md measured (twenty-fifth run). Sent together, the
// target wakes once and finds them all. nginx makes one system call per
// read and write as hookgate did; with batches a proxied request went
// 1.28-1.43x faster at 0.56-0.67x the CPU than without, side by side,
// and 1.06-1.34x nginx's rate (benchmarks/HISTORY.md, thirtieth run).
//
// How: the first goroutine to ask (the leader) yields once
// (runtime.Gosched), so that every goroutine runnable then (the
// connections the poller just woke, the deliveries a commit just
// released) runs up to its own read or write and queues it behind; then
// the leader submits them all in one io_uring_enter, hands each its
// result and wakes it. A goroutine alone in an idle gateway finds no one
// to wait for: its yield returns at once. Each call is what the raw call
// was: a send (MSG_DONTWAIT, MSG_NOSIGNAL) or a receive (MSG_DONTWAIT)
// that never waits, so a full send buffer or an empty socket is EAGAIN
// as before, and the caller waits in the runtime's poller as before. The
// calls run inside RawConn.Read/Write's callbacks, as the raw calls did:
// the runtime holds each descriptor for the call, so a concurrent Close
// cannot let its number be reused under the batch, and a waiting
// goroutine (parked on a channel) stops no stop-the-world.
//
// Where io_uring is missing (a kernel before 5.6, the io_uring_disabled
// sysctl, a container's seccomp profile; Docker's default blocks it) or
// does not behave as the above needs (probeRing), or HOOKGATE_IO_URING=off
// is set, each call is its own read(2) or write(2), as before.

// ioReq is one call in a batch: a goroutine's read or write, and its
// result. Each op owns one, so a call allocates nothing.
type ioReq struct {
	op    uint8 // opSend or opRecv
	flags uint32
	fd    uintptr
	p     []byte

	n     int           // bytes moved,
	errno syscall.Errno // or why none
	done  chan struct{} // the leader's word that n and errno are set
}

// batcher gathers calls and makes them together with run.
type batcher struct {
	mu    sync.Mutex
	queue []*ioReq // the calls waiting for the next batch; its leader is the first
	spare []*ioReq // the last batch's slice, for the next one (nil while in use)

	submit sync.Mutex // run's callers, one at a time (a ring has one submitter)
	run    func(q []*ioReq)
	limit  int    // the most calls run takes at once
	ring   *uring // run's ring; nil when it makes the calls one by one

	batches, calls atomic.Uint64 // how many batches, of how many calls
}

// batching is the process's batcher, or nil when every call is its own
// system call. Tests swap it; production sets it once, at start.
var batching atomic.Pointer[batcher]

// batchingOff says why batching is off, for Batching.
var batchingOff atomic.Pointer[string]

func init() {
	if os.Getenv("HOOKGATE_IO_URING") == "off" {
		turnOff(nil, "HOOKGATE_IO_URING=off")
		return
	}
	b, err := newBatcher()
	if err != nil {
		turnOff(nil, err.Error())
		return
	}
	batching.Store(b)
}

// turnOff stops batching with b (nil: whatever batches) and notes why.
func turnOff(b *batcher, why string) {
	batchingOff.Store(&why)
	if b == nil {
		batching.Store(nil)
	} else {
		batching.CompareAndSwap(b, nil)
	}
}

// Batching reports whether reads and writes are batched with io_uring,
// and when not, why.
func Batching() (on bool, why string) {
	if b := batching.Load(); b != nil {
		return true, ""
	}
	if w := batchingOff.Load(); w != nil {
		return false, *w
	}
	return false, "off"
}

// do makes r's call with the others queued now, and returns when r.n and
// r.errno are set.
func (b *batcher) do(r *ioReq) {
	b.mu.Lock()
	lead := len(b.queue) == 0
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	if !lead {
		<-r.done
		return
	}
	runtime.Gosched() // the goroutines runnable now queue theirs
	b.mu.Lock()
	q := b.queue
	b.queue, b.spare = b.spare, nil
	b.mu.Unlock()

	b.batches.Add(1)
	b.calls.Add(uint64(len(q)))
	b.submit.Lock()
	for i := 0; i < len(q); {
		j := i + 1
		// At most limit calls and maxRaw bytes a submission, since a
		// stop-the-world waits for one as for a raw call (rawsock.go; the
		// bound: ringEntries). One larger call goes alone, as a raw one
		// would.
		for bytes := len(q[i].p); j < len(q) && j-i < b.limit && bytes+len(q[j].p) <= maxRaw; j++ {
			bytes += len(q[j].p)
		}
		b.run(q[i:j])
		i = j
	}
	b.submit.Unlock()

	for _, x := range q[1:] {
		x.done <- struct{}{}
	}
	clear(q)
	b.mu.Lock()
	if b.spare == nil {
		b.spare = q[:0]
	}
	b.mu.Unlock()
}

// runPlain makes each call as its own system call: the batcher without a
// ring, under the race detector (race.go), where the detector must see
// each buffer's use.
func runPlain(q []*ioReq) {
	for _, r := range q {
		if r.op == opSend {
			r.n, r.errno = sysWrite(r.fd, r.p)
		} else {
			r.n, r.errno = sysRead(r.fd, r.p)
		}
		if r.errno != 0 {
			r.n = 0
		}
	}
}

// read and write are sysRead and sysWrite for an op: batched when the
// process batches. p is not empty.
func (r *ioReq) read(fd uintptr, p []byte) (int, syscall.Errno) {
	b := batching.Load()
	if b == nil {
		return sysRead(fd, p)
	}
	return r.call(b, opRecv, msgDontWait, fd, p)
}

func (r *ioReq) write(fd uintptr, p []byte) (int, syscall.Errno) {
	b := batching.Load()
	if b == nil {
		return sysWrite(fd, p)
	}
	return r.call(b, opSend, msgDontWait|msgNoSignal, fd, p)
}

func (r *ioReq) call(b *batcher, op uint8, flags uint32, fd uintptr, p []byte) (int, syscall.Errno) {
	r.op, r.flags, r.fd, r.p = op, flags, fd, p
	b.do(r)
	r.p = nil
	return r.n, r.errno
}
