package dispatch

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

// strictTarget is a target on rawURL whose every failure would show: one
// failed attempt waits an hour (so a test's failure timeout catches it), and
// two open the breaker for an hour.
func strictTarget(t *testing.T, name, rawURL string) config.Target {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return config.Target{
		Name: name, URL: u, Timeout: 3 * time.Second, MaxConns: 4, IDHeader: idHeader,
		Retry:   config.Retry{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour, MaxAge: 2 * time.Hour},
		Breaker: config.Breaker{Failures: 2, Cooldown: time.Hour},
	}
}

// deliverOneByOne enqueues n deliveries one after the other, each once the
// previous one has arrived at s, and returns how long the first one took
// from enqueue to arrival.
func deliverOneByOne(t *testing.T, r *rig, s *sink.Sink, tgt, prefix string, n int) (first time.Duration) {
	t.Helper()
	base := s.Count()
	for i := range n {
		began := time.Now()
		r.enqueue(del(fmt.Sprintf("%s.%d", prefix, i), tgt))
		if _, err := s.Wait(base+i+1, 5*time.Second); err != nil {
			t.Fatalf("delivery %d of %d after the target restarted: %v (breaker %s, queue %+v)",
				i+1, n, err, r.d.BreakerState(tgt), r.store.Stats()[tgt])
		}
		if i == 0 {
			first = time.Since(began)
		}
	}
	return first
}

// TestTargetRestartResumesAtOnce: a target restarted on the same port
// leaves the lane's pooled connections stale. Deliveries after the restart
// go out at once, each in one attempt: no failed attempt, no backoff, no
// breaker opening. Before, each delivery failed on stale connections, two
// such failures opened the breaker, and the target, healthy all along,
// got nothing until the cool-down.
func TestTargetRestartResumesAtOnce(t *testing.T) {
	// A reserved port, so no other test takes it between the two Starts.
	old, err := sink.Start(testport.Addr(t), sink.Options{Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := old.Addr()
	r := start(t, "", strictTarget(t, "crm", "http://"+addr+"/crm"))

	// Four at once, answered slowly, leave four pooled connections.
	for i := range 4 {
		r.enqueue(del(fmt.Sprintf("evt_before.%d", i), "crm"))
	}
	if _, err := old.Wait(4, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.waitStats("crm", "delivered before the restart", settled)
	if old.Conns() < 2 {
		t.Fatalf("the lane used %d connection(s) before the restart; the test needs several pooled", old.Conns())
	}

	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	restarted, err := sink.Start(addr, sink.Options{})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = restarted.Close() })

	first := deliverOneByOne(t, r, restarted, "crm", "evt_after", 10)
	t.Logf("first delivery after the restart arrived %v after it was enqueued", first)

	st := r.waitStats("crm", "delivered after the restart", settled)
	if st.Dead != 0 {
		t.Errorf("stats %+v: nothing may be dead", st)
	}
	if got := r.d.BreakerState("crm"); got != BreakerClosed {
		t.Errorf("breaker %s after a target restart, want closed", got)
	}
	if got := restarted.Count(); got != 10 {
		t.Errorf("restarted target got %d requests for 10 deliveries, want 10", got)
	}
}

// TestIdleClosedByTargetNoFailedAttempt: the same when the target closes
// idle keep-alive connections sooner than hookgate's idle_timeout (a net/http
// server with IdleTimeout): a delivery after a pause goes out in one attempt.
func TestIdleClosedByTargetNoFailedAttempt(t *testing.T) {
	var open, closed, served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if served.Add(1) <= 4 {
			time.Sleep(50 * time.Millisecond) // overlap, so the lane pools several connections
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
	r := start(t, "", strictTarget(t, "crm", srv.URL+"/crm"))

	for i := range 4 {
		r.enqueue(del(fmt.Sprintf("evt_warm.%d", i), "crm"))
	}
	r.waitStats("crm", "delivered", settled)
	if open.Load() < 2 {
		t.Fatalf("the lane used %d connection(s); the test needs several pooled", open.Load())
	}
	for round := range 3 {
		deadline := time.Now().Add(5 * time.Second)
		for closed.Load() < open.Load() { // the target closed every idle connection
			if time.Now().After(deadline) {
				t.Fatalf("round %d: target closed %d of %d connections", round, closed.Load(), open.Load())
			}
			time.Sleep(time.Millisecond)
		}
		want := served.Load() + 1
		r.enqueue(del(fmt.Sprintf("evt_pause.%d", round), "crm"))
		deadline = time.Now().Add(5 * time.Second)
		for served.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: delivery after idle connections closed did not arrive (breaker %s, queue %+v)",
					round, r.d.BreakerState("crm"), r.store.Stats()["crm"])
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.waitStats("crm", "delivered", settled)
	if got := r.d.BreakerState("crm"); got != BreakerClosed {
		t.Errorf("breaker %s, want closed", got)
	}
}

// TestProbeUsesFreshConnection: after the breaker opened, the pooled
// connections are suspect; a path that went silent (a NAT or load balancer
// dropped it, the host behind the address changed) shows no close. The
// half-open probe must test the target, not such a connection: it goes out
// on a fresh one. Before, it reused a pooled connection that never
// answered, failed after the target's timeout and opened the breaker again.
func TestProbeUsesFreshConnection(t *testing.T) {
	type connGen struct{}
	var phase atomic.Int64 // 0: the target fails; 1: it is well, but connections from phase 0 are dead
	var served atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		gen := r.Context().Value(connGen{}).(int64)
		if phase.Load() == 1 && gen == 0 {
			select { // a silent path: the request goes nowhere
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		if phase.Load() == 0 {
			if served.Add(1) == 2 {
				phase.Store(1)
			}
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	}))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connGen{}, phase.Load())
	}
	srv.Start()
	defer srv.Close()
	defer close(release)

	cfg := strictTarget(t, "crm", srv.URL+"/crm")
	cfg.MaxConns = 2
	cfg.Timeout = 10 * time.Second
	cfg.Retry.Initial, cfg.Retry.Max = 20*time.Millisecond, 20*time.Millisecond
	cfg.Breaker.Cooldown = 300 * time.Millisecond
	r := start(t, "", cfg)
	r.enqueue(del("evt_probe.0", "crm"), del("evt_probe.1", "crm"))

	// Two 503s open the breaker; the probe follows the cool-down.
	st := r.waitStats("crm", "delivered after the probe", settled)
	if st.Dead != 0 {
		t.Errorf("stats %+v: nothing may be dead", st)
	}
	if got := r.d.BreakerState("crm"); got != BreakerClosed {
		t.Errorf("breaker %s after the target recovered, want closed", got)
	}
}
