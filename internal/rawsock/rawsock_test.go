//go:build linux

package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a real loopback TCP connection (tcpPair),
// the first wrapped.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	return wrappedPair(t, "Wrap", Wrap)
}

// wrappedPair returns both ends of a loopback TCP connection (tcpPair),
// the first wrapped by wrap (named name, for the failure), and closed
// with the test, which takes it out of the sweeper's set.
func wrappedPair(t *testing.T, name string, wrap func(net.Conn) net.Conn) (*Conn, net.Conn) {
	t.Helper()
	c, peer := tcpPair(t)
	w, ok := wrap(c).(*Conn)
	if !ok {
		t.Fatalf("%s(%T) did not wrap a TCP connection", name, c)
	}
	t.Cleanup(func() { w.Close() })
	return w, peer
}

// A payload many times the socket buffers goes through whole both ways:
// the writes and reads that find the buffer full or empty wait in the
// netpoller and go on.
func TestRoundTripLarge(t *testing.T) {
	c, peer := pair(t)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	echoed := make(chan error, 1)
	go func() { // the peer echoes everything back
		_, err := io.Copy(peer, io.LimitReader(peer, int64(len(want))))
		echoed <- err
	}()
	// Collections throughout: a stop-the-world meets raw calls in both
	// directions and waits in the netpoller.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	wrote := make(chan error, 1)
	go func() {
		n, err := c.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		wrote <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read back differ from those written")
	}
}

func TestEOF(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("last"))
	peer.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil (io.EOF ends it)", got, err)
	}
	if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

// Deadlines apply as on a net.Conn, and the error says timeout.
func TestDeadlines(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 16))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v; want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Read returned after %v", d)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" {
		t.Fatalf("Read error %#v is not a *net.OpError for read", err)
	}

	// A writer whose peer never reads fills both buffers and then waits;
	// a deadline set meanwhile ends the wait.
	wrote := make(chan error, 1)
	started := make(chan struct{})
	var n int
	go func() {
		var err error
		close(started)
		n, err = c.Write(make([]byte, 64<<20))
		wrote <- err
	}()
	<-started
	time.Sleep(100 * time.Millisecond)
	c.SetWriteDeadline(time.Now())
	select {
	case err = <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("a write deadline did not end a waiting Write")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
		t.Fatalf("Write past its deadline = %d, %v; want less than all of it and a timeout", n, err)
	}
}

// A write to a connection the peer reset fails as net.Conn's would:
// *net.OpError "write" around EPIPE or ECONNRESET (target.connLost relies
// on that to retry a request on a fresh connection).
func TestWriteToResetConnection(t *testing.T) {
	c, peer := pair(t)
	peer.(*net.TCPConn).SetLinger(0) // close with RST
	peer.Close()
	time.Sleep(10 * time.Millisecond)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("POST / HTTP/1.1\r\n\r\n"))
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("Write to a reset connection: %v; want *net.OpError write with EPIPE or ECONNRESET", err)
	}
}

// Read and Write on a closed Conn report net.ErrClosed.
func TestClosed(t *testing.T) {
	c, _ := pair(t)
	c.Close()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v; want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v; want net.ErrClosed", err)
	}
}

// A Close from another goroutine ends a Read that is waiting.
func TestCloseWhileReading(t *testing.T) {
	c, _ := pair(t)
	closeEndsRead(t, c)
}

// closeEndsRead starts a Read on c that waits, closes c, and fails unless
// the Read ends with net.ErrClosed.
func closeEndsRead(t *testing.T, c *Conn) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 4))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read ended by Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting Read")
	}
}

// Only TCP connections are wrapped: a datagram's or a pipe's reads do not
// mean what a stream's do (an empty datagram is not EOF).
func TestWrapLeavesOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	path := filepath.Join(t.TempDir(), "s")
	ul, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	uc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for _, c := range []net.Conn{a, u, uc} {
		if Wrap(c) != c {
			t.Errorf("Wrap(%T) should return it unchanged", c)
		}
	}
}

// Two goroutines writing at once each get their records through whole, as
// on a net.Conn (whose descriptor lock orders them).
func TestConcurrentWrites(t *testing.T) {
	c, peer := pair(t)
	const records, size = 2000, 100
	var wg sync.WaitGroup
	for w := byte('a'); w <= 'b'; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := bytes.Repeat([]byte{w}, size)
			for i := 0; i < records; i++ {
				if _, err := c.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := make([]byte, 2*records*size)
	peer.SetReadDeadline(time.Now().Add(20 * time.Second)) // a lost write fails, not hangs
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := 0; i < len(got); i += size {
		if r := got[i : i+size]; !bytes.Equal(r, bytes.Repeat(r[:1], size)) {
			t.Fatalf("record %d is torn: %q", i/size, r)
		}
	}
}

// A Close from another goroutine ends a Write that waits for room, with
// what was written and net.ErrClosed.
func TestCloseWhileWriting(t *testing.T) {
	c, _ := pair(t) // the peer never reads
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		n, err := c.Write(make([]byte, 64<<20))
		done <- result{n, err}
	}()
	<-started
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case r := <-done:
		if r.n == 64<<20 || !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Write ended by Close = %d, %v; want less than all of it and net.ErrClosed", r.n, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting Write")
	}
}

// After a timeout, clearing the deadline makes the connection usable
// again, as on a net.Conn.
func TestDeadlineCleared(t *testing.T) {
	c, peer := pair(t)
	c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v; want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	go peer.Write([]byte("late"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("Read after clearing the deadline = %q, %v", buf, err)
	}
}

// The peer's half-close: we read its data then EOF, and can still write.
func TestPeerHalfClose(t *testing.T) {
	c, peer := pair(t)
	peer.Write([]byte("bye"))
	peer.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := c.Write([]byte("ok")); err != nil {
		t.Fatalf("Write after the peer's half-close: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}

// TestTryWrite: TryWrite sends what the socket takes and returns at once
// when its send buffer is full (the peer reads nothing), where Write
// would wait; what it sent arrives whole and in order once the peer reads.
func TestTryWrite(t *testing.T) {
	c, peer := pair(t)
	p := make([]byte, 64<<20) // more than any socket buffers
	for i := range p {
		p[i] = byte(i % 251)
	}
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		n, err = c.TryWrite(p)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("TryWrite waited for room")
	}
	if err != nil || n <= 0 || n >= len(p) {
		t.Fatalf("TryWrite: %d of %d bytes, err %v; want a part, no error", n, len(p), err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p[:n]) {
		t.Error("the peer read other bytes than those TryWrite sent")
	}
}
