package target

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
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
		answer(k)
	}
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
// requests and closes fails the other three at once, with an error naming
// the target, not at the timeout; the next request goes out on a fresh
// connection.
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
		k := fmt.Sprintf("k%d", i)
		switch {
		case k == keys[0] && (errs[i] != nil || string(rs[i].Body) != k):
			t.Errorf("%s, answered first: body %q, err %v", k, rs[i].Body, errs[i])
		case k != keys[0] && errs[i] == nil:
			t.Errorf("%s, never answered: status %d and no error", k, rs[i].Status)
		case k != keys[0]:
			if e, ok := errs[i].(*Error); !ok || e.Target != "crm" {
				t.Errorf("%s: error %v (%T), want a *target.Error naming the target", k, errs[i], errs[i])
			}
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the lost requests took %v to fail: they waited for the timeout", d)
	}
	var r Result
	if err := c.Do(&delivery.Delivery{ID: []byte("after")}, &r); err != nil || string(r.Body) != "after" {
		t.Fatalf("the next request: body %q, err %v", r.Body, err)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2 (the lost one and a fresh one)", got)
	}
}
