package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/syncbuf"
)

// The HTTP edges of ingest (issue 12, items 7 to 13). Every test here
// serves with a read timeout of a minute, far beyond its own failure
// timeouts, so an answer that only the read timeout would have produced
// fails the test instead of passing late.

const edgeReadTimeout = time.Minute

// edgeGateway serves two sync routes: /r (JSON, 100-byte limit, allow
// list 127.0.0.0/8) and /office (allow list 192.0.2.0/24), logging into
// the returned buffer as JSON lines.
func edgeGateway(t *testing.T) (g *Gateway, addr string, logs *logBuffer, s *sink.Sink) {
	t.Helper()
	s = startSink(t, sink.Options{})
	srv := testServer()
	srv.ReadTimeout = edgeReadTimeout
	r := syncRoute("r", "/r", "crm")
	r.JSON = true
	r.MaxBody = 100
	r.Verify = &config.Verify{AllowIPs: []string{"127.0.0.0/8"}}
	office := syncRoute("office", "/office", "crm")
	office.Verify = &config.Verify{AllowIPs: []string{"192.0.2.0/24"}}
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{r, office},
	}
	logs = &logBuffer{}
	deps := newDeps(t, cfg)
	deps.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, base := startGateway(t, cfg, deps)
	return g, strings.TrimPrefix(base, "http://"), logs, s
}

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct{ syncbuf.Buffer }

// lines decodes the JSON lines logged so far.
func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// exchange writes raw on a new connection and reads everything the
// gateway sends until it closes the connection (or 20 s pass: a failure).
// closed reports whether the gateway closed it.
func exchange(t *testing.T, addr, raw string) (got string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err == nil
}

// firstAnswer writes raw on a new connection and reads one answer.
func firstAnswer(t *testing.T, addr, raw string) (*http.Response, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), c
}

// TestExpectContinueRefusedFirst is item 7: a request that will be
// refused on its headers gets its refusal, not "100 Continue", and the
// body it was about to send is never invited.
func TestExpectContinueRefusedFirst(t *testing.T) {
	_, addr, _, s := edgeGateway(t)
	tests := []struct {
		name, head string
		status     int
		code       string
	}{
		{"no route", "POST /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n", 404, "route_not_found"},
		{"method", "PUT /r HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n", 405, "method_not_allowed"},
		{"too large", "POST /r HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n", 413, "body_too_large"},
		{"ip", "POST /office HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n", 401, "ip_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, closed := exchange(t, addr, tt.head)
			if strings.HasPrefix(got, "HTTP/1.1 100") {
				t.Fatalf("the body was invited before the refusal: %q", got)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
			if err != nil {
				t.Fatalf("answer %q: %v", got, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), `"code":"`+tt.code+`"`) {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, b, tt.status, tt.code)
			}
			if len(resp.Header.Get("Hookgate-Event-Id")) != eventIDLen {
				t.Errorf("no event id on the refusal")
			}
			if !closed {
				t.Errorf("the connection was left open after a refused Expect")
			}
		})
	}
	t.Run("admitted", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /r HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("an admissible Expect got %q %v, want 100 Continue", line, err)
		}
		br.ReadString('\n') // the blank line after 100 Continue
		io.WriteString(c, "{}")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after 100 Continue: %v %v", resp, err)
		}
	})
	if n := s.Count(); n != 1 {
		t.Errorf("the target got %d requests, want the 1 admitted", n)
	}
}

// TestContentLengthWithTransferEncoding is item 8 (RFC 9112 §6.1): both
// framings at once are an error, and the connection is closed.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	_, addr, _, s := edgeGateway(t)
	for _, head := range []string{
		"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /r HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /r HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}",
	} {
		got, closed := exchange(t, addr, head)
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, `"code":"bad_request"`) {
			t.Errorf("%q: got %q, want 400 bad_request", head, got)
		}
		if strings.Count(got, "HTTP/1.1 ") != 1 || !closed {
			t.Errorf("%q: the connection was not closed after the answer: %q", head, got)
		}
	}
	if n := s.Count(); n != 0 {
		t.Errorf("the target got %d requests, want none", n)
	}
}

// TestJSONMustBeUTF8 is item 9 (RFC 8259 §8.1): a json = true route
// refuses invalid UTF-8, inside strings too.
func TestJSONMustBeUTF8(t *testing.T) {
	_, addr, _, _ := edgeGateway(t)
	for _, body := range []string{"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"\xed\xa0\x80\":1}"} {
		resp, b, _ := firstAnswer(t, addr, fmt.Sprintf("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if resp.StatusCode != 400 || !strings.Contains(b, `"code":"invalid_json"`) {
			t.Errorf("%q: got %d %s, want 400 invalid_json", body, resp.StatusCode, b)
		}
	}
	body := `{"a":"héllo ✓"}`
	resp, b, _ := firstAnswer(t, addr, fmt.Sprintf("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	if resp.StatusCode != 200 {
		t.Errorf("valid UTF-8: got %d %s, want 200", resp.StatusCode, b)
	}
}

// TestMalformedRequestLines is item 10: bare-LF line endings are
// answered 400 at once, not after the read timeout, and an HTTP version
// other than 1.x 505, as nginx does.
func TestMalformedRequestLines(t *testing.T) {
	_, addr, _, s := edgeGateway(t)
	tests := []struct {
		name, raw string
		status    int
		code      string
	}{
		{"bare LF", "POST /r HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}", 400, "bad_request"},
		{"bare LF ending", "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\n\n{}", 400, "bad_request"},
		{"bare LF then CRLF", "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\n\r\n{}", 400, "bad_request"},
		{"HTTP/9.9", "POST /r HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 505, "http_version_not_supported"},
		{"HTTP/2.0", "POST /r HTTP/2.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 505, "http_version_not_supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, closed := exchange(t, addr, tt.raw)
			want := fmt.Sprintf("HTTP/1.1 %d ", tt.status)
			if !strings.HasPrefix(got, want) || !strings.Contains(got, `"code":"`+tt.code+`"`) {
				t.Errorf("got %q, want %s%s", got, want, tt.code)
			}
			if !closed {
				t.Errorf("the connection was left open")
			}
		})
	}
	// What stays accepted: CRLF, HTTP/1.0, and a bare LF inside a head
	// that ends in CRLFCRLF (RFC 9112 §2.2 lets a recipient take it as a
	// line end; fasthttp does).
	for _, raw := range []string{
		"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /r HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /r HTTP/1.1\r\nHost: x\nContent-Length: 2\r\n\r\n{}",
	} {
		resp, b, _ := firstAnswer(t, addr, raw)
		if resp.StatusCode != 200 {
			t.Errorf("%q: got %d %s, want 200", raw, resp.StatusCode, b)
		}
	}
	if n := s.Count(); n != 3 {
		t.Errorf("the target got %d requests, want 3", n)
	}
}

// eventIDTime decodes the millisecond timestamp at the front of an id.
func eventIDTime(t *testing.T, id string) time.Time {
	t.Helper()
	s, ok := strings.CutPrefix(id, eventIDPrefix)
	if !ok || len(s) != 26 {
		t.Fatalf("event id %q", id)
	}
	var ms uint64
	for i := range 10 { // the first 50 bits: 2 always zero, then 48 of milliseconds
		ms = ms<<5 | uint64(strings.IndexByte(crockford, s[i]))
	}
	return time.UnixMilli(int64(ms))
}

// TestRefusedEventIDsCarryTheirTime is item 12: requests refused while
// fasthttp reads them (no handler ran: ctx.Time() is not set) get ids
// stamped with the time they were refused, so ids sort by arrival.
func TestRefusedEventIDsCarryTheirTime(t *testing.T) {
	_, addr, _, _ := edgeGateway(t)
	raws := []string{
		"POST /r HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", // 431
		"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",                         // 400
		"\x00\x01 garbage\r\n\r\n",                                   // 400
		"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", // 200, from the handler
	}
	var last string
	for i := 0; i < 2; i++ {
		for _, raw := range raws {
			before := time.Now().Add(-time.Millisecond)
			got, _ := exchangeOne(t, addr, raw)
			after := time.Now().Add(time.Millisecond)
			id := got.Header.Get("Hookgate-Event-Id")
			at := eventIDTime(t, id)
			if at.Before(before.Truncate(time.Millisecond)) || at.After(after) {
				t.Errorf("%d answer: id %s is stamped %v, not between %v and %v", got.StatusCode, id, at, before, after)
			}
			if id <= last {
				t.Errorf("id %s does not sort after the one before it, %s", id, last)
			}
			last = id
		}
	}
}

// exchangeOne sends raw and reads one answer.
func exchangeOne(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	resp, b, c := firstAnswer(t, addr, raw)
	c.Close()
	return resp, b
}

// TestOversizedChunkedBodyOneLogLine is item 13: a chunked body over the
// route's limit is refused 413 against its own route, method and path,
// in exactly one log line.
func TestOversizedChunkedBodyOneLogLine(t *testing.T) {
	_, addr, logs, _ := edgeGateway(t)
	chunk := strings.Repeat("x", 80)
	raw := "POST /r?token=secret HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk, len(chunk), chunk)
	got, closed := exchange(t, addr, raw)
	if !strings.HasPrefix(got, "HTTP/1.1 413 ") || !strings.Contains(got, `"code":"body_too_large"`) {
		t.Fatalf("got %q, want 413 body_too_large", got)
	}
	if !closed {
		t.Errorf("the connection was left open with the rest of the body unread")
	}
	// The gateway may log after it answered: wait for the line, then make
	// sure no second one follows the first.
	waitFor(t, "the refusal's log line", func() bool { return len(logs.lines(t)) > 0 })
	time.Sleep(100 * time.Millisecond)
	lines := logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want exactly 1: %v", len(lines), lines)
	}
	l := lines[0]
	if l["msg"] != "ingest: refused" || l["route"] != "r" || l["method"] != "POST" || l["path"] != "/r" || l["code"] != "body_too_large" || l["status"] != float64(413) {
		t.Errorf("log line %v, want ingest: refused, route r, POST /r, body_too_large 413", l)
	}
	if strings.Contains(fmt.Sprint(l), "secret") {
		t.Errorf("the query reached the log: %v", l)
	}
}

// TestBodyDeadline is item 4's body deadline: a body must arrive within
// a grace period plus its declared size at the minimum body rate, so a
// sender that trickles a small body is answered 408 long before the read
// timeout.
func TestBodyDeadline(t *testing.T) {
	_, addr, _, _ := edgeGateway(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n{")
	done := make(chan struct{})
	go func() { // one byte a second
		defer close(done)
		for range 20 {
			time.Sleep(time.Second)
			if _, err := c.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // the read timeout is a minute
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body within 20 s: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(b), `"code":"request_timeout"`) {
		t.Errorf("got %d %s, want 408 request_timeout", resp.StatusCode, b)
	}
	c.Close()
	<-done
}

// TestConnectionsPerAddress is item 4's per-address cap: one address may
// hold at most half of the connection cap, so the other half stays open
// to everyone else.
func TestConnectionsPerAddress(t *testing.T) {
	s := startSink(t, sink.Options{})
	srv := testServer()
	srv.MaxConcurrency = 2 // connections: 64, 32 per address
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{syncRoute("r", "/r", "crm")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	addr := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 32 {
		c, err := dialFrom("127.0.0.2", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// A request answered proves the connection was accepted.
		io.WriteString(c, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d from 127.0.0.2: %v %v", len(conns), resp, err)
		}
	}
	c, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), `"code":"overloaded"`) {
		t.Errorf("the 33rd connection from 127.0.0.2 got %q, want our JSON 503", b)
	}
	// Another address is still served.
	c2, err := dialFrom("127.0.0.3", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	c2.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("another address: %v %v, want 200", resp, err)
	}
}

// TestHeadScanner: the connection's scanner flags a head that ends in a
// bare LF however the head is cut into reads, and nothing else: a CRLF
// head (bare LFs inside allowed), a body after it, and a read that does
// not start a request line (a pipelined continuation) are left alone.
func TestHeadScanner(t *testing.T) {
	tests := []struct {
		raw string
		bad bool
	}{
		{"POST /r HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"POST /r HTTP/1.1\r\nHost: x\nA: b\r\n\r\n", false},
		{"POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\n\n\n\n", false},
		{"GET / HTTP/1.1\r\n\r\n", false},
		{"POST /r HTTP/1.1\nHost: x\n\n", true},
		{"POST /r HTTP/1.1\r\nHost: x\n\n", true},
		{"POST /r HTTP/1.1\r\nHost: x\n\r\n", true},
		{"POST /r HTTP/1.1\r\nHost: x\r\n\n", true},
		{"POST /r HTTP/1.1\n\n", true},
		{"\nHost: x\n\r\n", false}, // not the start of a head
		{"-Length: 2\n\n", false},
	}
	for _, tt := range tests {
		for _, step := range []int{len(tt.raw), 1, 2, 3, 5} {
			step = max(step, len("POST ")) // the first read holds the method and its space
			c := &countedConn{}
			c.startHead()
			for i := 0; i < len(tt.raw) && c.scan; {
				n := min(step, len(tt.raw)-i)
				c.scanHead([]byte(tt.raw[i : i+n]))
				i += n
			}
			if c.bad != tt.bad {
				t.Errorf("%q in reads of %d: bad %v, want %v", tt.raw, step, c.bad, tt.bad)
			}
		}
	}
}

// TestRefusedOnReadOneLogLine: a request fasthttp could not read is one
// log line, the refusal's; fasthttp's own "error when serving
// connection" line is debug, below the default level.
func TestRefusedOnReadOneLogLine(t *testing.T) {
	_, addr, logs, _ := edgeGateway(t)
	got, _ := exchange(t, addr, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("got %q, want 400", got)
	}
	waitFor(t, "the refusal's log line", func() bool { return len(logs.lines(t)) > 0 })
	time.Sleep(100 * time.Millisecond)
	lines := logs.lines(t)
	if len(lines) != 1 || lines[0]["msg"] != "ingest: refused" || lines[0]["code"] != "bad_request" {
		t.Fatalf("log lines %v, want exactly one ingest: refused bad_request", lines)
	}
	if lines[0]["method"] != "" || lines[0]["path"] != "" {
		t.Errorf("a request fasthttp reset is logged as %v %v, want no method or path", lines[0]["method"], lines[0]["path"])
	}
}

// TestOneLargeBodyFitsAnAddress: an address may hold half the body
// budget, but always one body of its route's limit (config allows
// max_body up to max_body_memory).
func TestOneLargeBodyFitsAnAddress(t *testing.T) {
	s := startSink(t, sink.Options{})
	srv := testServer()
	srv.MaxBodyMemory = 128 << 10
	r := syncRoute("r", "/r", "crm")
	r.MaxBody = 100 << 10
	cfg := &config.Config{Server: srv, Targets: []config.Target{targetAt(t, "crm", s.URL())}, Routes: []config.Route{r}}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	body := strings.Repeat("x", 90<<10)
	resp, b, _ := firstAnswer(t, strings.TrimPrefix(base, "http://"), fmt.Sprintf("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	if resp.StatusCode != 200 {
		t.Errorf("a 90 KiB body on a 100 KiB route with a 128 KiB budget: %d %s, want 200", resp.StatusCode, b)
	}
}

// TestLargeBodyExceptionIsPerRequest: an address may go past its share of
// the body budget only with one request (one body of the route's limit
// must fit); a second request from it is refused while the first holds
// more than the share, so many slow requests cannot add up past it.
func TestLargeBodyExceptionIsPerRequest(t *testing.T) {
	s := startSink(t, sink.Options{})
	srv := testServer()
	srv.MaxBodyMemory = 128 << 10 // the address's share: 64 KiB
	r := syncRoute("r", "/r", "crm")
	r.MaxBody = 100 << 10
	cfg := &config.Config{Server: srv, Targets: []config.Target{targetAt(t, "crm", s.URL())}, Routes: []config.Route{r}}
	g, base := startGateway(t, cfg, newDeps(t, cfg))
	addr := strings.TrimPrefix(base, "http://")

	// The first request declares 90 KiB and sends 70 KiB of it: past the
	// share, alone, so it may.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 90<<10, strings.Repeat("x", 70<<10))
	deadline := time.Now().Add(10 * time.Second) // a failure timeout, not a measurement
	for g.bodyMem.Load() < 70<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the first body's bytes were not reserved: %d", g.bodyMem.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A second request from the same address, small and whole: the
	// address already holds more than its share.
	body := strings.Repeat("y", 10<<10)
	resp, b, _ := firstAnswer(t, addr, fmt.Sprintf("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	if resp.StatusCode != 503 || !strings.Contains(b, "overloaded") {
		t.Errorf("a second request while the address holds 70 KiB of a 64 KiB share: %d %s, want 503 overloaded", resp.StatusCode, b)
	}

	// The first one, finished, is delivered.
	io.WriteString(c, strings.Repeat("x", 20<<10))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	first, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("the first request: %v %v, want 200", first, err)
	}
}

// TestPipelinedRequestsAnswered: a sender that pipelines gets every
// answer, in order. Requests sent together are read together; a request
// sent while the one before it is being answered arrives after the
// server's read and before its answer, when the connection (which sends
// an answer when it reads the next request, rawsock.WrapServer) would
// wait without reading and miss it: the sweeper's poke finds it within
// 200 ms, long before the 30 s idle timeout that would otherwise end the
// wait, and the connection reads first from then on. With an idle
// timeout under a second the runtime holds the deadline, no poke can
// come, and the connection reads right after sending.
func TestPipelinedRequestsAnswered(t *testing.T) {
	// 800 ms: under the second past which rawsock keeps a deadline
	// lazily, and room for a loaded machine between two requests.
	for _, idle := range []time.Duration{30 * time.Second, 800 * time.Millisecond} {
		t.Run("idle "+idle.String(), func(t *testing.T) { pipelined(t, idle) })
	}
}

func pipelined(t *testing.T, idle time.Duration) {
	srv := testServer()
	srv.IdleTimeout = idle
	c, err := net.Dial("tcp", oneRouteGateway(t, srv, startSink(t, sink.Options{Delay: 50 * time.Millisecond})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const req = "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	br := bufio.NewReader(c)
	answers := func(n int) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a third of the longer idle timeout
		for i := range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer %d of %d: %v", i+1, n, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("answer %d of %d: %d, want 200", i+1, n, resp.StatusCode)
			}
		}
	}
	io.WriteString(c, req+req+req) // together
	answers(3)
	for range 3 { // one while the one before is being answered (the sink waits 50 ms)
		io.WriteString(c, req)
		time.Sleep(10 * time.Millisecond)
		io.WriteString(c, req)
		answers(2)
	}
}
