package natsq

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookgate/hookgate/internal/natstest"
)

// gateway opens a presence on url as one gateway would, on its own
// connection. beat and ttl 0 use newPresence's defaults.
func gateway(t *testing.T, url, name string, beat, ttl time.Duration) (*presence, *nats.Conn) {
	t.Helper()
	nc, js := dedupeConn(t, url)
	var (
		p   *presence
		err error
	)
	if beat == 0 {
		p, err = newPresence(nc, js, "hookgate", name, 1, slog.New(slog.DiscardHandler))
	} else {
		p, err = startPresence(nc, js, "hookgate", name, 1, slog.New(slog.DiscardHandler), beat, ttl)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p, nc
}

// waitGateways polls until every p counts want gateways. The deadline is a
// failure timeout only.
func waitGateways(t *testing.T, want int, ps ...*presence) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		ok := true
		for _, p := range ps {
			if p.gateways() != want {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			got := make([]int, len(ps))
			for i, p := range ps {
				got[i] = p.gateways()
			}
			t.Fatalf("gateways() = %v after %s, want %d each", got, failAfter, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPresenceCountsGateways: gateways on one stream count each other
// (with the production timing: heartbeats every 2 s, a 6 s TTL); one that
// closes is counted out by the others; two processes with the same name
// are still two gateways.
func TestPresenceCountsGateways(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := gateway(t, srv.URL(), "edge", 0, 0)
	if n := a.gateways(); n != 1 {
		t.Fatalf("a lone gateway counts %d, want 1", n)
	}
	b, _ := gateway(t, srv.URL(), "edge", 0, 0)
	waitGateways(t, 2, a, b)
	c, _ := gateway(t, srv.URL(), "", 0, 0)
	waitGateways(t, 3, a, b, c)
	a.close()
	waitGateways(t, 2, b, c)
	if a.id == b.id {
		t.Fatalf("two gateways named %q share the key %q", "edge", a.id)
	}
}

// TestPresenceDeadGatewayDropsOut: a gateway that stops without closing
// (killed: its connection gone, its key not deleted) is counted out by the
// others once its last heartbeat is older than the TTL, and back in when
// it comes back.
func TestPresenceDeadGatewayDropsOut(t *testing.T) {
	srv := natstest.Start(t)
	const beat, ttl = 200 * time.Millisecond, time.Second
	a, _ := gateway(t, srv.URL(), "a", beat, ttl)
	b, bnc := gateway(t, srv.URL(), "b", beat, ttl)
	waitGateways(t, 2, a, b)
	bnc.Close() // b's heartbeats stop; nothing deletes its key
	waitGateways(t, 1, a)
	b2, _ := gateway(t, srv.URL(), "b", beat, ttl)
	waitGateways(t, 2, a, b2)
	// b's close after its connection died must not hang.
	b.close()
	// NATS restarted: the bucket is kept (file storage), heartbeats resume,
	// and a watch that missed our own heartbeats is started again.
	srv.Restart()
	c, _ := gateway(t, srv.URL(), "c", beat, ttl)
	waitGateways(t, 3, a, b2, c)
}

// TestPresenceWake: a wake from one gateway calls the others' notify
// function with the target name (names with dots included), and never
// the waking gateway's own.
func TestPresenceWake(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := gateway(t, srv.URL(), "a", 0, 0)
	b, _ := gateway(t, srv.URL(), "b", 0, 0)
	var (
		mu    sync.Mutex
		woken = map[*presence][]string{}
	)
	for _, p := range []*presence{a, b} {
		p.notify(func(target string) {
			mu.Lock()
			woken[p] = append(woken[p], target)
			mu.Unlock()
		})
	}
	got := func(p *presence) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(woken[p])
	}
	waitFor := func(p *presence, target string) {
		t.Helper()
		deadline := time.Now().Add(failAfter)
		for !slices.Contains(got(p), target) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not woken for %q within %s (woken for %q)", p.id, target, failAfter, got(p))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	a.wake("crm")
	a.wake("sms.eu-west.1")
	a.wake("crm")
	waitFor(b, "crm")
	waitFor(b, "sms.eu-west.1")
	// b wakes a only after its own subscription had a's wakes: on one
	// server, a's subscription got them before b's "marker" too, so a
	// having skipped its own shows now.
	b.wake("marker")
	waitFor(a, "marker")
	if w := got(a); !slices.Equal(w, []string{"marker"}) {
		t.Fatalf("a was woken for %q, want only b's wake [marker]", w)
	}
	a.wake("marker2")
	waitFor(b, "marker2")
	for _, target := range got(b) {
		if target == "marker" {
			t.Fatalf("b was woken by its own wake: %q", got(b))
		}
	}
}

// TestPresenceWakeAllocs: wake is on the ingest hot path (after every
// Enqueue); once a target has been woken, queueing its wake (and the
// sender taking the queue) allocates nothing.
func TestPresenceWakeAllocs(t *testing.T) {
	p := &presence{targets: map[string]*wakeTarget{}, kick: make(chan struct{}, 1), wake0: "hookgate.wake."}
	targets := []string{"crm", "sms.eu-west.1", "coupons"}
	cycle := func() {
		for _, target := range targets {
			p.wake(target)
			p.wake(target)
		}
		select {
		case <-p.kick:
		default:
			t.Fatal("wake did not signal the sender")
		}
		batch := p.pendingWakes()
		if len(batch) != len(targets) {
			t.Fatalf("%d wakes pending after waking %d targets twice each, want one each", len(batch), len(targets))
		}
		p.sent(batch)
	}
	cycle()
	if n := testing.AllocsPerRun(200, cycle); n != 0 {
		t.Fatalf("%v allocations per round of wakes, want 0", n)
	}
	if got := p.targets["sms.eu-west.1"].subject; got != "hookgate.wake.sms=2Eeu-west=2E1" {
		t.Fatalf("wake subject %q", got)
	}
}
