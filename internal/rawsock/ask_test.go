//go:build linux

package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// clientPair is pair with the first end wrapped as a client's connection,
// which waits first however long it idled (askIdle an hour, for the
// test), unless the test sets askIdle again.
func clientPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	idle := askIdle
	askIdle = time.Hour
	t.Cleanup(func() { askIdle = idle })
	return wrappedPair(t, "WrapClient", WrapClient)
}

// wantAnswer reads len(want) bytes from c, waiting up to 10 s, and fails
// unless they are want.
func wantAnswer(t *testing.T, c *Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
		t.Fatalf("Read = %q, %v; want %q", b, err, want)
	}
}

// nothingArrives fails if peer receives a byte within d.
func nothingArrives(t *testing.T, peer net.Conn, d time.Duration) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := peer.Read(b[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the peer read %d bytes (%v) before the client read; want nothing until then", n, err)
	}
	peer.SetReadDeadline(time.Time{})
}

// A client's writes are held until it reads, then go out whole and in
// order, and the answer comes back.
func TestClientSendsWhenItReads(t *testing.T) {
	c, peer := clientPair(t)
	for _, p := range []string{"POST / HTTP/1.1\r\n", "Host: x\r\n\r\n", "body"} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	nothingArrives(t, peer, 50*time.Millisecond)
	const question = "POST / HTTP/1.1\r\nHost: x\r\n\r\nbody"
	got := make(chan string, 1)
	go func() {
		b := make([]byte, len(question))
		if _, err := io.ReadFull(peer, b); err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
		peer.Write([]byte("answer"))
	}()
	wantAnswer(t, c, "answer")
	if q := <-got; q != question {
		t.Fatalf("the peer got %q; want %q", q, question)
	}
}

// Many questions in a row, each answered at once: an answer that arrives
// while the question is being written (the peer can run inside the
// write, on loopback) still wakes the wait. A lost wake-up would show as
// the read deadline's error.
func TestClientNoAnswerIsLost(t *testing.T) {
	c, peer := clientPair(t)
	go func() { // answers each 8-byte question with its first 4 bytes
		b := make([]byte, 8)
		for {
			if _, err := io.ReadFull(peer, b); err != nil {
				return
			}
			if _, err := peer.Write(b[:4]); err != nil {
				return
			}
		}
	}()
	q := []byte("q000rest")
	a := make([]byte, 4)
	for i := range 5000 {
		q[1], q[2], q[3] = '0'+byte(i/100%10), '0'+byte(i/10%10), '0'+byte(i%10)
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, a); err != nil {
			t.Fatalf("question %d: %v", i, err)
		}
		if !bytes.Equal(a, q[:4]) {
			t.Fatalf("question %d: answer %q, want %q", i, a, q[:4])
		}
	}
}

// More than maxHeld goes out at once, after what was held, without a
// Read.
func TestClientLargeWriteGoesAtOnce(t *testing.T) {
	c, peer := clientPair(t)
	big := bytes.Repeat([]byte("b"), maxHeld)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1+len(big))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 'a' || !bytes.Equal(got[1:], big) {
		t.Fatal("the peer got the bytes out of order")
	}
}

// A question to a peer that has gone (closed, or reset) fails the Read at
// once, with the error a plain write or read would have given: never a
// wait until the deadline.
func TestClientPeerGone(t *testing.T) {
	for _, reset := range []bool{false, true} {
		name := "closed"
		if reset {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			c, peer := clientPair(t)
			if reset {
				peer.(*net.TCPConn).SetLinger(0)
			}
			peer.Close()
			time.Sleep(10 * time.Millisecond) // the FIN or RST reaches c
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			_, err := c.Read(make([]byte, 16))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read after %v: %v; want the peer's close at once", time.Since(start), err)
			}
			var op *net.OpError
			lost := err == io.EOF || errors.As(err, &op) &&
				(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
			if !lost {
				t.Fatalf("Read: %v (%T); want io.EOF, EPIPE or ECONNRESET", err, err)
			}
			if reset && (op == nil || op.Op != "write") {
				t.Fatalf("Read: %v; want the write's error, as a plain Write would have returned it", err)
			}
		})
	}
}

// A peer that half-closed (FIN) and reads on without answering gives no
// wake-up after the question. A connection idle for askIdle since its
// last answer sends it as a plain write and reads first, so it sees the
// FIN at once; one that waits first waits for its deadline (the hazard
// the guard bounds).
func TestClientIdleReadsFirst(t *testing.T) {
	for _, idle := range []bool{true, false} {
		name := "recent"
		if idle {
			name = "idle"
		}
		t.Run(name, func(t *testing.T) {
			c, peer := clientPair(t)
			if idle {
				askIdle = 0 // any idle time is too long
			}
			peer.(*net.TCPConn).CloseWrite()
			go io.Copy(io.Discard, peer)
			time.Sleep(20 * time.Millisecond) // the FIN reaches c
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, err := c.Read(make([]byte, 16))
			if idle && err != io.EOF {
				t.Fatalf("Read: %v; want io.EOF at once", err)
			}
			if !idle && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read: %v; want the deadline's error", err)
			}
		})
	}
}

// A request larger than maxHeld goes out in part when written; a peer
// that answers from the head alone (a 413, a 401) has answered before the
// rest is sent. That answer's wake-up came before the Read, so the Read
// reads first and finds it.
func TestClientEarlyAnswer(t *testing.T) {
	c, peer := clientPair(t)
	head := bytes.Repeat([]byte("h"), maxHeld+1)
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(peer, make([]byte, len(head)))
		if err == nil {
			_, err = peer.Write([]byte("413"))
		}
		got <- err
	}()
	if _, err := c.Write(head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the answer arrives; the poller takes its wake-up
	wantAnswer(t, c, "413")
}

// A question larger than the room left in the send buffer: the callback
// sends what fits, and the rest is written as Write does, waiting for the
// peer to read; then the answer is read.
func TestClientQuestionFillsSendBuffer(t *testing.T) {
	c, peer := clientPair(t)
	// Small buffers of fixed size (no autotuning), filled while the peer
	// is not reading: a write too large to hold goes at once, as far as
	// its deadline lets it.
	c.Conn.(*net.TCPConn).SetWriteBuffer(4096)
	peer.(*net.TCPConn).SetReadBuffer(4096)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	filled, err := c.Write(make([]byte, 16<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("filling the buffers: %d bytes, %v; want the write deadline", filled, err)
	}
	c.SetWriteDeadline(time.Time{})
	// A Read ends the request that went out at once; the next is held.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	c.Read(make([]byte, 1))
	q := bytes.Repeat([]byte("q"), maxHeld)
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // the callback's send finds no room
		b := make([]byte, filled+len(q))
		if _, err := io.ReadFull(peer, b); err == nil && bytes.Equal(b[filled:], q) {
			peer.Write([]byte("ok"))
		}
	}()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second)) // for the rest of the question
	wantAnswer(t, c, "ok")
}

// A Read whose deadline passed before anything was sent keeps the
// question: the next Read, after the deadline is moved, sends it. A
// Close during the wait ends it, and leaves Write usable for its error.
func TestClientDeadlineAndClose(t *testing.T) {
	c, peer := clientPair(t)
	if _, err := c.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v; want the deadline's error", err)
	}
	nothingArrives(t, peer, 20*time.Millisecond)
	go func() {
		b := make([]byte, len("question"))
		if _, err := io.ReadFull(peer, b); err == nil && string(b) == "question" {
			peer.Write([]byte("ok"))
		}
	}()
	wantAnswer(t, c, "ok") // the deadline moved

	if _, err := c.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	closeEndsRead(t, c) // the held "again" was sent, and no answer comes
	for _, n := range []int{1, maxHeld + 1} {
		if _, err := c.Write(bytes.Repeat([]byte("x"), n)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write of %d bytes after Close: %v; want net.ErrClosed", n, err)
		}
	}
}
