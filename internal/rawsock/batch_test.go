//go:build linux

package rawsock

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// withBatching runs the test with b as the process's batcher (nil: none),
// and puts the one before back after it.
func withBatching(t *testing.T, b *batcher) {
	t.Helper()
	before := batching.Load()
	batching.Store(b)
	t.Cleanup(func() { batching.Store(before) })
}

// freshBatcher is a batcher of its own for one test: a ring's, or the
// one-by-one kind under the race detector and where the kernel has no
// io_uring (the process then says so, which is checked). Its ring is
// closed with the test, once no call can be using it.
func freshBatcher(t *testing.T) *batcher {
	t.Helper()
	b, err := newBatcher()
	if err != nil {
		noRingHere(t, err)
		return &batcher{run: runPlain, limit: ringEntries}
	}
	if b.ring != nil {
		t.Cleanup(func() {
			b.submit.Lock()
			defer b.submit.Unlock()
			b.ring.close()
		})
	}
	return b
}

// noRingHere checks, for a test that found no ring (err), that the
// process does not batch either and says why.
func noRingHere(t *testing.T, err error) {
	t.Helper()
	if on, why := Batching(); on || why == "" {
		t.Fatalf("no ring here (%v), yet Batching() = %v, %q", err, on, why)
	}
	t.Logf("no io_uring here (%v): the batcher makes its calls one by one", err)
}

// On a kernel that allows io_uring (as this project's machines do), the
// process batches its reads and writes; where the sysctl forbids it, it
// says why not, and every call is its own system call. Under a seccomp
// filter (a container's) or with the sysctl at 1 (privileged processes
// only), either may be right, but off must say why.
func TestBatchingAtStart(t *testing.T) {
	if os.Getenv("HOOKGATE_IO_URING") == "off" {
		on, why := Batching()
		if on || !strings.Contains(why, "HOOKGATE_IO_URING=off") {
			t.Fatalf("with HOOKGATE_IO_URING=off: Batching() = %v, %q; want off, saying so", on, why)
		}
		return
	}
	sysctl, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	// No file: a kernel before 6.6, which has no such switch. 1 allows
	// privileged processes only (root, CAP_SYS_ADMIN), 2 none.
	setting := "0"
	if err == nil {
		setting = strings.TrimSpace(string(sysctl))
	}
	on, why := Batching()
	switch {
	case !on && why == "":
		t.Fatal("batching is off and Batching says no reason")
	case setting == "2" && on:
		t.Fatal("io_uring_disabled is 2, yet batching is on")
	case setting == "0" && !underSeccomp(t) && !on:
		t.Fatalf("io_uring is allowed here, yet batching is off: %s", why)
	case !on:
		t.Logf("batching is off here: %s", why)
	}
}

// Goroutines that make their calls at the same moment make them in one
// batch, and every byte arrives where it was sent: 32 connections, each
// with a goroutine that sends a question and reads its answer, on one P
// as on the benchmark's core, with and without batching.
func TestBatchesCarryManyCalls(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, mode := range []string{"batched", "unbatched"} {
		t.Run(mode, func(t *testing.T) {
			var b *batcher
			if mode == "batched" {
				b = freshBatcher(t)
			}
			withBatching(t, b)
			const conns, rounds = 32, 200
			var wg sync.WaitGroup
			errs := make(chan error, 2*conns)
			for i := 0; i < conns; i++ {
				c, peer := pair(t)
				rescue(t, peer)
				wg.Add(2)
				go func() { // the peer echoes each question, upper-cased
					defer wg.Done()
					q := make([]byte, 16)
					for r := 0; r < rounds; r++ {
						if _, err := io.ReadFull(peer, q); err != nil {
							errs <- err
							return
						}
						if _, err := peer.Write(bytes.ToUpper(q)); err != nil {
							errs <- err
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					a := make([]byte, 16)
					for r := 0; r < rounds; r++ {
						q := fmt.Sprintf("conn %02d, q %05d", i, r)[:16]
						if _, err := c.Write([]byte(q)); err != nil {
							errs <- err
							return
						}
						if _, err := io.ReadFull(c, a); err != nil {
							errs <- err
							return
						}
						if want := strings.ToUpper(q); string(a) != want {
							errs <- fmt.Errorf("answer %q; want %q", a, want)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if b == nil {
				return
			}
			batches, calls := b.batches.Load(), b.calls.Load()
			if calls < 2*conns*rounds {
				t.Fatalf("%d calls batched; want at least a read and a write a question (%d)", calls, 2*conns*rounds)
			}
			if per := float64(calls) / float64(batches); per < 2 {
				t.Fatalf("%d calls in %d batches (%.2f each): the goroutines did not batch", calls, batches, per)
			}
			t.Logf("%d calls in %d batches (%.2f each)", calls, batches, float64(calls)/float64(batches))
		})
	}
}

// The calls that wait behave as without batching: a write larger than
// the socket buffers finds them full (EAGAIN from the batch), waits in
// the poller until the peer reads, and goes on; a read finds the socket
// empty and waits until the peer writes; a peer's reset is the write's
// error, as write(2)'s.
func TestBatchedCallsThatWait(t *testing.T) {
	withBatching(t, freshBatcher(t))
	c, peer := pair(t)
	rescue(t, peer)
	// Small buffers, so that 8 MiB cannot go before the peer reads.
	if err := c.Conn.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("an 8 MiB Write returned (%v) before the peer read anything: it did not wait for room", err)
	default:
	}
	got := make([]byte, len(big))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the large write arrived changed")
	}
	read := make(chan string, 1)
	go func() {
		buf := make([]byte, 8)
		n, err := c.Read(buf)
		read <- fmt.Sprint(string(buf[:n]), err)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case r := <-read:
		t.Fatalf("Read returned %q before the peer wrote anything", r)
	default:
	}
	peer.Write([]byte("late"))
	if r := <-read; r != "late<nil>" {
		t.Fatalf("Read after a wait = %q; want late<nil>", r)
	}
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // a reset
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("after the reset"))
		time.Sleep(time.Millisecond)
	}
	if err == nil || !(strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")) {
		t.Fatalf("Write after the peer's reset: %v; want a reset or broken pipe", err)
	}
}

// underSeccomp reports whether a seccomp filter restricts this process's
// system calls, as a container's may (Docker's default forbids io_uring).
func underSeccomp(t *testing.T) bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}
