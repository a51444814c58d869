package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/valyala/fasthttp"
)

// The server's timeouts are kept by the connections (countedConn.timeouts),
// not by fasthttp. These run through the real listener with timeouts over
// a second, which rawsock keeps lazily and counts from its coarse clock:
// such a deadline does not fire early, and fires at most a few hundred
// milliseconds late. Every lower bound below is exact but for a margin
// of 300 ms: the server arms some deadlines just before the client can
// see why, and the coarse clock runs behind by as long as a loaded
// machine delays the sweeper's tick. The upper ones leave 2 s for a
// loaded machine. Both are less than the read and idle timeouts differ,
// so that neither passes for the other.
const (
	timeoutRead  = 1500 * time.Millisecond
	timeoutIdle  = 4 * time.Second
	timeoutEarly = 300 * time.Millisecond
	timeoutLate  = 2 * time.Second
)

func TestServerTimeouts(t *testing.T) {
	srv := testServer()
	srv.ReadTimeout = timeoutRead
	srv.IdleTimeout = timeoutIdle
	addr := oneRouteGateway(t, srv, startSink(t, sink.Options{}))
	const request = "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	const partial = "POST /r HTTP/1.1\r\nHost: x\r\n"

	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // the test's own bound
		return c, bufio.NewReader(c)
	}
	answered := func(t *testing.T, c net.Conn, br *bufio.Reader) {
		t.Helper()
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a request was answered %d; want 200", resp.StatusCode)
		}
	}
	// closedAfter reads what the server still sends until it closes, and
	// checks when that was, counted from since.
	closedAfter := func(t *testing.T, br *bufio.Reader, since time.Time, want time.Duration) string {
		t.Helper()
		b, err := io.ReadAll(br)
		took := time.Since(since)
		if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading until the server closed: %v", err)
		}
		if took < want-timeoutEarly || took > want+timeoutLate {
			t.Fatalf("the server closed the connection after %v; want %v", took, want)
		}
		return string(b)
	}

	t.Run("a connection that sends nothing", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, br := dial(t)
		// fasthttp answers 408 here too, as it does for a stalled head.
		if b := closedAfter(t, br, start, timeoutRead); !strings.HasPrefix(b, "HTTP/1.1 408") {
			t.Fatalf("the server sent %q; want a 408", b)
		}
	})
	t.Run("a first head that stalls", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		c, br := dial(t)
		io.WriteString(c, partial)
		if b := closedAfter(t, br, start, timeoutRead); !strings.HasPrefix(b, "HTTP/1.1 408") {
			t.Fatalf("the server sent %q; want a 408", b)
		}
	})
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		t.Parallel()
		c, br := dial(t)
		answered(t, c, br)
		// The idle timeout, not the read timeout, which is shorter.
		if b := closedAfter(t, br, time.Now(), timeoutIdle); b != "" {
			t.Fatalf("the server sent %q; want nothing", b)
		}
	})
	t.Run("a later head that stalls", func(t *testing.T) {
		t.Parallel()
		c, br := dial(t)
		answered(t, c, br)
		// Idle for most of the idle timeout, then a head begins: the read
		// timeout runs from its first byte, past the idle deadline (which
		// would close the connection a second after the head began).
		time.Sleep(timeoutIdle - time.Second)
		start := time.Now()
		io.WriteString(c, partial)
		if b := closedAfter(t, br, start, timeoutRead); !strings.HasPrefix(b, "HTTP/1.1 408") {
			t.Fatalf("the server sent %q; want a 408", b)
		}
	})
}

// isReset reports whether err is a connection reset, which a close with
// unread bytes may give the client instead of EOF.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// An answer has write_timeout from its first write, whatever number of
// writes it takes; the next answer (after a read) has it afresh.
func TestServerWriteTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, cc := acceptOne(t, &connLimitListener{Listener: ln, writeTimeout: timeout})

	// An answer's first write, then, a second later, more of it than the
	// client's buffers take while it reads nothing: the deadline counts
	// from the first write.
	start := time.Now()
	if _, err := cc.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	big := make([]byte, 64<<20)
	_, err = cc.Write(big)
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write the client does not read: %v; want a timeout", err)
	}
	if took < timeout-timeoutEarly || took > timeout+timeoutLate {
		t.Fatalf("the write timed out %v after the answer's first write; want %v", took, timeout)
	}

	// The next request (fasthttp marks the connection idle, then active
	// at its first byte), with "Expect: 100-continue": the 100 Continue
	// is timed on its own, and the answer a second later has the whole
	// timeout again, counted from its own first write, though nothing was
	// read in between (the body came with the head).
	for _, st := range []fasthttp.ConnState{fasthttp.StateIdle, fasthttp.StateActive} {
		connState(cc, st)
	}
	cc.interim = true // as expect marks it
	if _, err := cc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	start = time.Now()
	_, err = cc.Write(big)
	took = time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the answer after a 100 Continue: %v; want a timeout", err)
	}
	if took < timeout-timeoutEarly || took > timeout+timeoutLate {
		t.Fatalf("the answer after a 100 Continue timed out after %v; want %v from its first write", took, timeout)
	}
}

// An answer to "Expect: 100-continue" whose body came with the head, and
// that is written past write_timeout after the 100 Continue (a slow
// target), still reaches the sender, here through the close that
// "Connection: close" asks for, which sends it through the write
// deadline: timed from the 100 Continue, it had expired (a review's
// finding).
func TestExpectContinueAnswerTimedAfresh(t *testing.T) {
	srv := testServer()
	srv.WriteTimeout = 1200 * time.Millisecond
	addr := oneRouteGateway(t, srv, startSink(t, sink.Options{Delay: 1800 * time.Millisecond}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST /r HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200") {
		t.Fatalf("the sender read %q; want the 100 Continue, then the target's 200", b)
	}
}

// oneRouteGateway starts a gateway on srv with one sync route, POST /r,
// to the sink s, and returns its address (host:port).
func oneRouteGateway(t *testing.T, srv config.Server, s *sink.Sink) string {
	t.Helper()
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{syncRoute("r", "/r", "crm")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	return strings.TrimPrefix(base, "http://")
}
