//go:build linux && !race

package rawsock

import (
	"io"
	"testing"
	"time"
)

// A read and a write allocate nothing: the callbacks RawConn calls are
// bound once, in Wrap. (Without the race detector, which allocates.)
func TestNoAllocations(t *testing.T) {
	c, peer := pair(t)
	msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(1000, func() {
		// The deadlines fasthttp sets before each phase: lazy ones (far)
		// and one the runtime gets (near), then none.
		c.SetReadDeadline(time.Now().Add(time.Hour))
		c.SetWriteDeadline(time.Now().Add(time.Hour))
		c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		c.SetWriteDeadline(time.Time{})
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("deadlines, a write and a read allocate %v times; want 0", n)
	}
}
