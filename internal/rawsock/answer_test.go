//go:build linux

package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// serverPair is tcpPair with the first end wrapped as a server's
// connection, with a lazy read deadline an hour away (so it is in the
// sweeper's set, and waits first), and rescued after 10 s.
func serverPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	w, peer := wrappedPair(t, "WrapServer", WrapServer)
	w.SetReadDeadline(time.Now().Add(time.Hour))
	rescue(t, peer)
	return w, peer
}

// request reads len(want) bytes from the server's side and fails unless
// they are want. It reads as a server does, into more room than a request
// takes, so that each read empties the socket.
func request(t *testing.T, c *Conn, want string) {
	t.Helper()
	b := make([]byte, len(want)+64)
	if n, err := readAtLeast(c, b, len(want)); err != nil || string(b[:n]) != want {
		t.Fatalf("Read = %q, %v; want %q", b[:n], err, want)
	}
}

// readAtLeast is io.ReadAtLeast with plain Reads.
func readAtLeast(c *Conn, b []byte, n int) (int, error) {
	got := 0
	for got < n {
		m, err := c.Read(b[got:])
		got += m
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// answered reads len(want) bytes at the peer, sends next (if any), and
// reports what went wrong on errs.
func answered(peer net.Conn, want, next string, errs chan<- error) {
	b := make([]byte, len(want))
	_, err := io.ReadFull(peer, b)
	if err == nil && string(b) != want {
		err = errors.New("the peer got " + string(b) + ", want " + want)
	}
	if err == nil && next != "" {
		_, err = peer.Write([]byte(next))
	}
	errs <- err
}

// peerGets fails unless the peer reads want next.
func peerGets(t *testing.T, peer net.Conn, want string) {
	t.Helper()
	errs := make(chan error, 1)
	answered(peer, want, "", errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// firstRequest has the peer send "req1" and the server read it, in a
// read that empties the socket.
func firstRequest(t *testing.T, c *Conn, peer net.Conn) {
	t.Helper()
	peer.Write([]byte("req1"))
	request(t, c, "req1")
}

// A server's answer is held until it reads the next request; that Read
// sends it and waits without reading, and the request it waits for
// arrives.
func TestServerAnswersWhenItReads(t *testing.T) {
	c, peer := serverPair(t)
	firstRequest(t, c, peer)
	if _, err := c.Write([]byte("ans1")); err != nil {
		t.Fatal(err)
	}
	nothingArrives(t, peer, 30*time.Millisecond)
	errs := make(chan error, 1)
	go answered(peer, "ans1", "req2", errs)
	request(t, c, "req2")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if c.ask.waited != 1 || c.ask.lost {
		t.Fatalf("waited %d times without reading (lost %v); want once, nothing lost", c.ask.waited, c.ask.lost)
	}
}

// Many requests in a row, each sent the moment its answer arrives: every
// Read after the first waits without reading, and no wake-up is lost
// (the sweeper's poke would find the request waiting, and say so).
func TestServerNoRequestIsLost(t *testing.T) {
	c, peer := serverPair(t)
	const rounds = 5000
	go func() { // reads each 4-byte answer and sends the next 8-byte request
		b := make([]byte, 4)
		for i := range rounds {
			if i > 0 {
				if _, err := io.ReadFull(peer, b); err != nil {
					return
				}
			}
			if _, err := peer.Write([]byte("req-" + string(b))); err != nil {
				return
			}
		}
	}()
	req := make([]byte, 64) // more room than a request: each read empties the socket
	ans := []byte("a000")
	for i := range rounds {
		if n, err := readAtLeast(c, req, 8); n != 8 || err != nil {
			t.Fatalf("request %d: %d bytes, %v", i, n, err)
		}
		if i > 0 && !bytes.Equal(req[4:8], ans) {
			t.Fatalf("request %d: %q, want it to carry the answer %q", i, req[:8], ans)
		}
		ans[1], ans[2], ans[3] = '0'+byte(i/100%10), '0'+byte(i/10%10), '0'+byte(i%10)
		if i < rounds-1 {
			if _, err := c.Write(ans); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.ask.lost || c.ask.waited != rounds-1 {
		t.Fatalf("waited %d times without reading, lost %v; want %d, false", c.ask.waited, c.ask.lost, rounds-1)
	}
}

// A sender that pipelines: its second request arrives after the server
// read the first and before it answered, so the wake-up of those bytes
// is spent before the Read. Waiting first, the Read misses it until the
// sweeper's poke reads (one tick or two: 100 to 200 ms in production, a few ms here), and
// the connection reads first from then on. The guards read first and so
// see it at once: a read that filled its buffer (more may have been
// waiting), a connection without lazy deadlines (the sweeper does not
// watch it), one that lost a wake-up before.
func TestServerPipelined(t *testing.T) {
	pokeSoon(t)
	for _, tc := range []struct {
		name     string
		full     bool // the first request's read fills its buffer
		noLazy   bool // no lazy deadline: not in the sweeper's set
		lostOnce bool // a pipelined round first
		waits    bool
	}{
		{name: "waits", waits: true},
		{name: "full read", full: true},
		{name: "not watched", noLazy: true},
		{name: "lost before", lostOnce: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *Conn
			var peer net.Conn
			if tc.noLazy {
				raw, p := tcpPair(t)
				c, peer = WrapServer(raw).(*Conn), p
				t.Cleanup(func() { c.Close() })
				rescue(t, peer)
			} else {
				c, peer = serverPair(t)
			}
			round := func() {
				t.Helper()
				peer.Write([]byte("req1"))
				b := make([]byte, 64)
				if tc.full {
					b = b[:4]
				}
				if n, err := c.Read(b); n != 4 || err != nil {
					t.Fatalf("first Read = %d, %v", n, err)
				}
				peer.Write([]byte("req2"))
				time.Sleep(20 * time.Millisecond) // req2 arrives, its wake-up spent
				if _, err := c.Write([]byte("ans1")); err != nil {
					t.Fatal(err)
				}
				request(t, c, "req2")
				peerGets(t, peer, "ans1")
			}
			if tc.lostOnce {
				round()
				if !c.ask.lost {
					t.Fatal("the pipelined round did not find a lost wake-up")
				}
				c.ask.waited = 0
			}
			round()
			if waited := c.ask.waited > 0; waited != tc.waits || c.ask.lost != (tc.waits || tc.lostOnce) {
				t.Fatalf("waited without reading %d times, lost %v; want waiting %v", c.ask.waited, c.ask.lost, tc.waits)
			}
		})
	}
}

// A sender that half-closes with its request: the FIN comes with the
// data, so the read that empties the socket leaves it unseen, and no
// wake-up follows. The poke finds it; the answer went out before.
func TestServerHalfClose(t *testing.T) {
	pokeSoon(t)
	c, peer := serverPair(t)
	peer.Write([]byte("req1"))
	peer.(*net.TCPConn).CloseWrite()
	time.Sleep(20 * time.Millisecond)
	request(t, c, "req1")
	if _, err := c.Write([]byte("ans1")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 16)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the FIN = %d, %v; want io.EOF", n, err)
	}
	peerGets(t, peer, "ans1")
}

// An idle keep-alive connection: the poke reads, finds nothing, and the
// Read waits on as a plain one, with the poke's deadline cleared; the
// next request is read whenever it comes, and the connection still waits
// first afterwards. A real deadline still ends the wait.
func TestServerIdle(t *testing.T) {
	pokeSoon(t)
	c, peer := serverPair(t)
	firstRequest(t, c, peer)
	c.Write([]byte("ans1"))
	errs := make(chan error, 1)
	go func() {
		b := make([]byte, 4)
		_, err := io.ReadFull(peer, b)
		if err == nil {
			time.Sleep(10 * sweepEvery) // idle for some ticks
			_, err = peer.Write([]byte("req2"))
		}
		errs <- err
	}()
	ticks := sweeper.ticks.Load()
	request(t, c, "req2")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got := sweeper.ticks.Load() - ticks; got < 3 {
		t.Fatalf("the request came after %d ticks; want the wait to span a poke", got)
	}
	if c.ask.lost || c.ask.waited != 1 {
		t.Fatalf("waited %d times without reading, lost %v; want once, false", c.ask.waited, c.ask.lost)
	}

	// Its deadline still fires (lazy: 60 ms is past lazyAfter), with the
	// timeout error, after the poke.
	c.Write([]byte("ans2"))
	go answered(peer, "ans2", "", errs)
	c.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("Read = %v after %v; want the deadline's error after about 60 ms", err, time.Since(start))
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if c.ask.waited != 2 {
		t.Fatalf("waited %d times without reading; want 2", c.ask.waited)
	}
}

// What a server's connection holds goes out on Close (the last answer,
// "Connection: close") and on CloseWrite (a lingering close), before the
// FIN.
func TestServerCloseSendsHeld(t *testing.T) {
	for _, half := range []bool{false, true} {
		name := "Close"
		if half {
			name = "CloseWrite"
		}
		t.Run(name, func(t *testing.T) {
			c, peer := serverPair(t)
			if _, err := c.Write([]byte("last answer")); err != nil {
				t.Fatal(err)
			}
			if half {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			} else if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(peer)
			if string(b) != "last answer" || err != nil {
				t.Fatalf("the peer read %q, %v; want the answer, then EOF", b, err)
			}
			if half { // still reads what the peer sends
				peer.Write([]byte("bye"))
				request(t, c, "bye")
			}
		})
	}
}

// A Close from another goroutine (fasthttp's Shutdown closing an idle
// connection) ends a Read that waits without reading; the answer it sent
// reached the peer.
func TestServerCloseWhileWaiting(t *testing.T) {
	c, peer := serverPair(t)
	firstRequest(t, c, peer)
	c.Write([]byte("ans1"))
	closeEndsRead(t, c)
	if c.ask.waited != 1 {
		t.Fatalf("waited without reading %d times; want once", c.ask.waited)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(peer); string(b) != "ans1" || err != nil {
		t.Fatalf("the peer read %q, %v; want the answer, then EOF", b, err)
	}
}

// A read deadline the runtime holds (near: an idle_timeout under a
// second) would be overwritten by a poke, so no poke comes: the Read
// reads right after its send, and finds a pipelined request whose
// wake-up was spent, instead of waiting for the deadline.
func TestServerNearDeadlineReads(t *testing.T) {
	pokeSoon(t)
	c, peer := serverPair(t)
	firstRequest(t, c, peer)
	peer.Write([]byte("req2"))
	time.Sleep(20 * time.Millisecond) // req2 arrives, its wake-up spent
	c.Write([]byte("ans1"))
	// Near (lazyAfter is 50 ms here), by the sweeper's clock, which a
	// loaded machine may leave stale: it is judged right after a tick.
	freshTick(t)
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)) // the runtime's
	b := make([]byte, 64)
	if n, err := c.Read(b); err != nil || string(b[:n]) != "req2" {
		t.Fatalf("Read = %q, %v; want req2, in the socket already", b[:n], err)
	}
	if c.ask.waited != 0 || c.ask.lost {
		t.Fatalf("waited without reading %d times, lost %v; want neither", c.ask.waited, c.ask.lost)
	}
	peerGets(t, peer, "ans1")
}

// A Close from another goroutine while a Read sends the held answer into
// a full send buffer (a sender that does not read; fasthttp's Shutdown
// counts the connection idle by then) cuts that send short, as it cuts a
// plain Write short, instead of waiting for the write deadline.
func TestServerCloseCutsWaitingSend(t *testing.T) {
	c, peer := serverPair(t)
	c.Conn.(*net.TCPConn).SetWriteBuffer(4096)
	peer.(*net.TCPConn).SetReadBuffer(4096)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Write(make([]byte, 16<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("filling the buffers: %v; want the write deadline", err)
	}
	c.SetWriteDeadline(time.Now().Add(time.Hour)) // lazy, as fasthttp's
	c.SetReadDeadline(time.Now().Add(-time.Second))
	c.Read(make([]byte, 1)) // ends the write that went out at once: the next is held
	c.SetReadDeadline(time.Now().Add(time.Hour))
	if _, err := c.Write(bytes.Repeat([]byte("a"), maxHeld)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 64)) // sends: no room, waits for it
		read <- err
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited behind a send waiting for room")
	}
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("the Read whose send was cut short returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Read did not end")
	}
}

// After CloseWrite a Write fails, as on the plain connection, instead of
// being held and dropped.
func TestServerWriteAfterCloseWrite(t *testing.T) {
	c, _ := serverPair(t)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("a Write after CloseWrite succeeded; want EPIPE")
	}
}
