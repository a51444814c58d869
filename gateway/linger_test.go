package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestEarlyAnswerIsNotReset: a request the gateway answers before reading
// all of it (a head over max_header_bytes, a body over the route's limit)
// gets its answer and a clean close, while its sender is still writing.
// Before the lingering close, the gateway closed with the request's rest
// unread, the kernel answered with a reset, and the sender saw
// "connection reset by peer" on its write (CI saw it with net/http) or
// lost the answer.
func TestEarlyAnswerIsNotReset(t *testing.T) {
	_, addr, _, _ := edgeGateway(t)
	body := bytes.Repeat([]byte("x"), 1<<20) // more than the socket buffers hold
	tests := []struct {
		name, head string
		status     int
		code       string
	}{
		{"head over max_header_bytes", "POST /r HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) +
			"\r\nContent-Length: 1048576\r\n\r\n", 431, "headers_too_large"},
		{"body over the route's limit", "POST /r HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
			413, "body_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 5 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(20 * time.Second))
				wrote := make(chan error, 1)
				go func() {
					_, err := c.Write(append([]byte(tc.head), body...))
					wrote <- err
				}()
				answer, err := io.ReadAll(c) // the answer, then EOF: not a reset
				if err != nil {
					t.Fatalf("round %d: reading the answer: %v (got %q)", round, err, answer)
				}
				if err := <-wrote; err != nil {
					t.Fatalf("round %d: writing the request: %v", round, err)
				}
				c.Close()
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
				if err != nil {
					t.Fatalf("round %d: %q: %v", round, answer, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
					t.Fatalf("round %d: got %d %s, want %d %s", round, resp.StatusCode, b, tc.status, tc.code)
				}
				if !resp.Close {
					t.Errorf("round %d: the answer does not say Connection: close", round)
				}
			}
		})
	}
}

// A connection closed mid-request lingers until its client closes, and
// counts against the caps meanwhile; one closed between requests closes
// at once.
func TestLingeringHoldsItsSlot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &connLimitListener{Listener: ln, max: 10}
	accept := func() (client net.Conn, server *countedConn) { return acceptOne(t, l) }

	// These close at once: an idle connection, and one Shutdown closes
	// while it is stalled in its first head (nothing was answered, so
	// nothing needs to linger, and Shutdown would wait for it).
	for _, tc := range []struct {
		name   string
		states []fasthttp.ConnState
	}{
		{"idle between requests", []fasthttp.ConnState{fasthttp.StateActive, fasthttp.StateIdle}},
		{"closed before any answer", []fasthttp.ConnState{fasthttp.StateActive}},
	} {
		client, s := accept()
		defer client.Close()
		for _, st := range tc.states {
			connState(s, st)
		}
		s.Close()
		if n := l.open.Load(); n != 0 {
			t.Fatalf("%s: %d open after Close, want 0", tc.name, n)
		}
	}

	busy, s := accept()
	defer busy.Close()
	connState(s, fasthttp.StateActive)
	if _, err := busy.Write([]byte("POST /r HTTP/1.1\r\n")); err != nil { // unread at Close
		t.Fatal(err)
	}
	s.Write([]byte("answer"))
	s.Close()
	s.Close() // fasthttp closes twice a connection Shutdown claimed
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(busy) // the answer, then the FIN
	if err != nil || string(got) != "answer" {
		t.Fatalf("the client read %q, %v; want the answer, then EOF", got, err)
	}
	if _, err := busy.Write([]byte("X-More: still writing\r\n")); err != nil {
		t.Fatalf("the client's write after the answer: %v; the lingering side should take it", err)
	}
	if n := l.open.Load(); n != 1 {
		t.Fatalf("%d open while lingering, want 1: a lingering connection holds its slot", n)
	}
	busy.Close()
	for deadline := time.Now().Add(10 * time.Second); l.open.Load() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d open after the client closed, want 0", l.open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection refused over the cap that sent its request at once gets
// the 503 (which says when to retry) and a clean close, not a reset.
func TestRefusedConnGetsItsAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &connLimitListener{Listener: ln, max: 1}
	acceptOne(t, l) // holds the one slot
	go l.Accept()   // refuses the next ones; returns when ln closes

	request := append([]byte("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"), bytes.Repeat([]byte("x"), 1<<20)...)
	for round := range 5 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(request)
			wrote <- err
		}()
		answer, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("round %d: reading the answer: %v (got %q)", round, err, answer)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("round %d: writing the request: %v", round, err)
		}
		c.Close()
		if !bytes.Equal(answer, overloadedConn) {
			t.Fatalf("round %d: got %q, want the connection-limit 503", round, answer)
		}
	}
}

// Under TLS, fasthttp hands the hooks the *tls.Conn around countedConn:
// the phases and the connection's shared state are still found.
func TestCountedUnderTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &countedConn{Conn: a}
	tc := tls.Server(cc, &tls.Config{})
	if counted(tc) != cc {
		t.Fatal("counted does not see through the TLS layer")
	}
	connState(tc, fasthttp.StateActive)
	if cc.phase.Load() != phaseReading {
		t.Fatalf("phase %d after StateActive under TLS, want reading", cc.phase.Load())
	}
	if counted(b) != nil {
		t.Fatal("counted found a countedConn in a connection Serve did not accept")
	}
}

// acceptOne dials l's listener and returns the client's end and the
// connection l accepted; the test's cleanup closes both.
func acceptOne(t *testing.T, l *connLimitListener) (client net.Conn, server *countedConn) {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	got, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { got.Close() })
	cc, ok := got.(*countedConn)
	if !ok {
		t.Fatalf("Accept returned %T, want *countedConn", got)
	}
	return client, cc
}
