//go:build linux && !race

package rawsock

import (
	"io"
	"strings"
	"syscall"
	"testing"
)

// A ring that fails (its descriptor made /dev/null's under it, so that
// io_uring_enter refuses it) turns batching off:
// the calls it could not make are made again as system calls of their
// own, and nothing is lost.
func TestRingFailureTurnsBatchingOff(t *testing.T) {
	b := freshBatcher(t)
	if b.ring == nil {
		return // no io_uring here, which freshBatcher checked the process says
	}
	withBatching(t, b)
	defer batchingOff.Store(batchingOff.Load())
	c, peer := pair(t)
	rescue(t, peer)
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(null, int(b.ring.fd), syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	syscall.Close(null)
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatalf("Write with a failed ring: %v", err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("the peer read %q, %v; want \"still here\"", buf, err)
	}
	if on, why := Batching(); on || !strings.Contains(why, "io_uring_enter failed") {
		t.Fatalf("after the failure Batching() = %v, %q; want off, saying why", on, why)
	}
}

// The probe passes on this kernel: sends and receives through the ring
// move whole messages, and EAGAIN comes at once for an empty or a full
// socket.
func TestProbeRing(t *testing.T) {
	u, err := newURing(8)
	if err != nil {
		noRingHere(t, err)
		return
	}
	defer u.close()
	if err := probeRing(u); err != nil {
		t.Fatal(err)
	}
}
