package target

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

// fillPool makes n requests at once through c, so that c's pool holds
// several idle keep-alive connections afterwards (the target must answer
// slowly enough for them to overlap). Two stale ones are enough to fail a
// Do that retries once on the next pooled connection.
func fillPool(t *testing.T, c *Client, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var r Result
			if err := c.Do(&delivery.Delivery{ID: []byte{'p', byte('0' + i)}, Body: []byte("{}")}, &r); err != nil || r.Status != 200 {
				t.Errorf("filling the pool: %v, status %d", err, r.Status)
			}
		})
	}
	wg.Wait()
	if got := c.hc.IdleConnsCount(); got < 2 {
		t.Fatalf("pool holds %d idle connection(s) after %d requests at once, want at least 2", got, n)
	}
}

// TestTargetRestartDoesNotFailDeliveries: a target restarted on the same
// port leaves every pooled keep-alive connection stale. The first delivery
// after the restart must not fail on them: Do drops the stale pool and
// sends on a fresh connection at once, and every later delivery succeeds
// too. Before, Do retried once on the next stale connection and failed, so
// a pool of several idle connections failed several deliveries in a row.
func TestTargetRestartDoesNotFailDeliveries(t *testing.T) {
	const pooled = 6
	// A reserved port, so no other test takes it between the two Starts.
	before, err := sink.Start(testport.Addr(t), sink.Options{Delay: 50 * time.Millisecond, Discard: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := before.Addr()
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+addr+"/crm"), MaxConns: 16, IDHeader: "Idempotency-Key"})
	fillPool(t, c, pooled)

	// The target restarts: the old process closes its connections, the new
	// one listens on the same port.
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := sink.Start(addr, sink.Options{})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = after.Close() })

	const n = 20
	var first time.Duration
	for i := range n {
		d := &delivery.Delivery{ID: []byte{'d', byte('a' + i)}, Body: []byte(`{"after":"restart"}`)}
		var r Result
		start := time.Now()
		if err := c.Do(d, &r); err != nil || r.Status != 200 {
			t.Fatalf("delivery %d after the restart: %v, status %d; want it delivered at once", i+1, err, r.Status)
		}
		if i == 0 {
			first = time.Since(start)
		}
	}
	if first > 5*time.Second { // a failure timeout only; the figure is logged
		t.Errorf("first delivery after the restart took %v", first)
	}
	t.Logf("first delivery after the restart took %v (%d requests at once had filled the pool)", first, pooled)
	reqs, err := after.Wait(n, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != n {
		t.Errorf("restarted target got %d requests, want %d (each delivery once)", len(reqs), n)
	}
}

// TestIdleClosedByTargetRetried: a target whose keep-alive timeout is
// shorter than hookgate's idle_timeout (Node's 5s, Apache's 5s, a load
// balancer's) closes pooled connections while they idle. A delivery after
// such a pause must go out on a fresh connection, not fail.
func TestIdleClosedByTargetRetried(t *testing.T) {
	const pooled = 4
	var open, closed atomic.Int64
	var served atomic.Int64
	gate := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if served.Add(1) <= pooled {
			<-gate // the first requests overlap, so each gets its own connection
		}
		w.WriteHeader(200)
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/hook"), MaxConns: 16})
	go func() {
		for open.Load() < pooled {
			time.Sleep(time.Millisecond)
		}
		close(gate)
	}()
	fillPool(t, c, pooled)

	for round := range 3 {
		// Wait until the target has closed every idle connection.
		deadline := time.Now().Add(5 * time.Second)
		for closed.Load() < open.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the target closed %d of %d connections", round, closed.Load(), open.Load())
			}
			time.Sleep(time.Millisecond)
		}
		if c.hc.IdleConnsCount() == 0 {
			t.Fatal("the client's pool is empty: nothing stale to test against")
		}
		var r Result
		if err := c.Do(&delivery.Delivery{ID: []byte("evt_idle"), Body: []byte("{}")}, &r); err != nil || r.Status != 200 {
			t.Fatalf("round %d: delivery after the target closed idle connections: %v, status %d", round, err, r.Status)
		}
	}
}

// TestLostConnRetriedOnlyOnce: a target that takes every request and
// closes the connection without answering gets each request at most twice
// per Do (the one retry that a stale connection earns), never more.
func TestLostConnRetriedOnlyOnce(t *testing.T) {
	var requests atomic.Int64
	addr := serveConns(t, func(conn net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		requests.Add(1) // read in full, never answered
	})
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+addr+"/")})
	for i := range 3 {
		var r Result
		if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err == nil {
			t.Fatalf("Do %d: no error from a target that never answers (status %d)", i, r.Status)
		}
	}
	if got := requests.Load(); got > 6 {
		t.Errorf("target got %d requests for 3 deliveries, want at most 6", got)
	}
}

// TestHTTPSReusesConnection: over TLS too, a live pooled connection is
// reused, not mistaken for a stale one.
func TestHTTPSReusesConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/secure")})
	c.hc.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	for i := range 50 {
		var r Result
		if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 200 {
			t.Fatalf("Do %d: %v, status %d", i, err, r.Status)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("50 sequential requests over TLS used %d connections, want 1", got)
	}
}

// TestResetIdleConnsRetried: a target (or a firewall) that aborts idle
// connections with a reset instead of a close: the next write on a pooled
// one fails at once, and the delivery still goes out on a fresh connection.
func TestResetIdleConnsRetried(t *testing.T) {
	const pooled = 4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var idle []*net.TCPConn // connections that answered and wait for their next request
	answered := make(chan struct{}, 64)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						conn.Close()
						return
					}
					io.Copy(io.Discard, req.Body)
					if req.Header.Get("X-Slow") != "" {
						time.Sleep(50 * time.Millisecond)
					}
					mu.Lock()
					idle = append(idle, conn.(*net.TCPConn))
					mu.Unlock()
					io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					answered <- struct{}{}
				}
			}()
		}
	}()
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+ln.Addr().String()+"/"), MaxConns: 16})
	var wg sync.WaitGroup
	for range pooled {
		wg.Go(func() {
			var r Result
			if err := c.Do(&delivery.Delivery{Body: []byte("{}"), Headers: kvs("X-Slow", "1")}, &r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range pooled {
		<-answered
	}
	mu.Lock()
	for _, conn := range idle {
		conn.SetLinger(0) // close sends a reset
		conn.Close()
	}
	idle = nil
	mu.Unlock()
	time.Sleep(20 * time.Millisecond) // let the resets reach the client's sockets
	var r Result
	if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 200 {
		t.Fatalf("delivery after the target reset its idle connections: %v, status %d", err, r.Status)
	}
}
