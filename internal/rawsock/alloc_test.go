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

// A client's question and answer allocate nothing once its held buffer
// has grown to the question's size.
func TestClientNoAllocations(t *testing.T) {
	c, peer := clientPair(t)
	msg := []byte("POST /hooks HTTP/1.1\r\nHost: x\r\n\r\n{}")
	go func() { // answers each question with its first 8 bytes
		q := make([]byte, len(msg))
		for {
			if _, err := io.ReadFull(peer, q); err != nil {
				return
			}
			if _, err := peer.Write(q[:8]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 8)
	if n := testing.AllocsPerRun(1000, func() {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("a question and its answer allocate %v times; want 0", n)
	}
}

// A server's request and answer allocate nothing once its held buffer
// has grown to the answer's size.
func TestServerNoAllocations(t *testing.T) {
	c, peer := serverPair(t)
	req := []byte("POST /hooks HTTP/1.1\r\nHost: x\r\n\r\n{}")
	ans := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	go func() { // sends a request for each answer
		b := make([]byte, len(ans))
		for {
			if _, err := peer.Write(req); err != nil {
				return
			}
			if _, err := io.ReadFull(peer, b); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 4096)
	if n := testing.AllocsPerRun(1000, func() {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		if n, err := readAtLeast(c, buf, len(req)); n != len(req) || err != nil {
			t.Fatal(n, err)
		}
		if _, err := c.Write(ans); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("a request and its answer allocate %v times; want 0", n)
	}
	if c.ask.waited < 1000 || c.ask.lost {
		t.Fatalf("waited without reading %d times, lost %v; want every Read but the first", c.ask.waited, c.ask.lost)
	}
}
