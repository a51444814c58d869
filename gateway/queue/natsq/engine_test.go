package natsq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

func TestTokens(t *testing.T) {
	for _, name := range []string{"crm", "crm.eu", "a b*>", "", "=", "x=2E", "évé", "t_1-2"} {
		tok := token(name)
		if strings.ContainsAny(tok, ". *>") {
			t.Errorf("token(%q) = %q holds a subject separator or wildcard", name, tok)
		}
		for i := 0; i < len(tok); i++ {
			if !plain(tok[i]) && tok[i] != '=' {
				t.Errorf("token(%q) = %q holds %q, not valid in a key-value key", name, tok, tok[i])
			}
		}
		back, ok := untoken(tok)
		if !ok || back != name {
			t.Errorf("untoken(token(%q)) = %q, %v", name, back, ok)
		}
	}
	for _, bad := range []string{"=2", "=ZZ", "a.b", ""} {
		if _, ok := untoken(bad); ok {
			t.Errorf("untoken(%q) accepted text token never writes", bad)
		}
	}
}

// The basic path: what Enqueue stored, Claim hands out once, whole, and
// Ack removes; a target name with '.' is its own target.
func TestEnqueueClaimAck(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	before := time.Now().UnixNano()
	if err := e.Enqueue([]delivery.Delivery{dlv("d1.0", "crm.eu", "orders", `{"a":1}`), dlv("d1.1", "crm", "orders", `{"b":2}`)}); err != nil {
		t.Fatal(err)
	}
	got := claimWait(t, e, "crm.eu", 10, time.Minute)
	if len(got) != 1 {
		t.Fatalf("claimed %d (%s), want 1", len(got), ids(got))
	}
	l := got[0]
	d := l.Delivery
	if string(d.ID) != "d1.0" || d.Target != "crm.eu" || d.Route != "orders" || string(d.Body) != `{"a":1}` ||
		string(d.Method) != "POST" || string(d.Path) != "/hook" || len(d.Headers) != 1 || string(d.EventID) != "evt_d1.0" {
		t.Fatalf("claimed %+v, not what was enqueued", d)
	}
	if l.Attempts != 0 || l.EnqueuedAt < before || l.EnqueuedAt > time.Now().UnixNano() {
		t.Fatalf("attempts %d, enqueued %d (enqueue started at %d)", l.Attempts, l.EnqueuedAt, before)
	}
	claimNone(t, e, "crm.eu") // leased: nobody else gets it
	if err := e.Ack(l.Ref); err != nil {
		t.Fatal(err)
	}
	if err := e.Ack(l.Ref); !errors.Is(err, queue.ErrNotLeased) {
		t.Fatalf("second ack: %v, want ErrNotLeased", err)
	}
	other := claimWait(t, e, "crm", 10, time.Minute)
	if string(other[0].Delivery.ID) != "d1.1" {
		t.Fatalf("target crm claimed %s", ids(other))
	}
	if err := e.Ack(other[0].Ref); err != nil {
		t.Fatal(err)
	}
	if f := e.Fill(); f.Depth != 0 {
		t.Fatalf("after acking everything, Fill %+v", f)
	}
}

// A retry counts an attempt and comes back only at its due time; a
// Release and a lease that ran out count none.
func TestRetryAttemptsAndDue(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{AckWait: 2 * time.Second})
	if err := e.Enqueue([]delivery.Delivery{dlv("r1", "crm", "orders", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, e, "crm", 1, time.Minute)[0]
	due := time.Now().Add(1500 * time.Millisecond)
	a := delivery.Attempt{At: time.Now(), Duration: time.Millisecond, Status: 503, Error: "status 503: will retry", Body: []byte("busy")}
	if err := e.Retry(l.Ref, due, a); err != nil {
		t.Fatal(err)
	}
	claimNone(t, e, "crm")
	if next, ok := e.NextDue("crm"); !ok || !next.Equal(time.Unix(0, due.UnixNano())) {
		t.Fatalf("NextDue = %v, %v; want %v", next, ok, due)
	}
	l = claimWait(t, e, "crm", 1, time.Minute)[0]
	if now := time.Now(); now.Before(due) {
		t.Fatalf("retried delivery claimed at %v, before its due time %v", now, due)
	}
	if l.Attempts != 1 {
		t.Fatalf("after one Retry, Attempts = %d, want 1", l.Attempts)
	}
	// Release: ready again at once, no attempt recorded.
	if err := e.Release(l.Ref); err != nil {
		t.Fatal(err)
	}
	l = claimWait(t, e, "crm", 1, time.Minute)[0]
	if l.Attempts != 1 {
		t.Fatalf("after Release, Attempts = %d, want still 1", l.Attempts)
	}
	// A lease that runs out (leaseFor over, so no renewal): another
	// gateway gets it after AckWait, and it is not an attempt either.
	other := openEngine(t, []string{s.URL()}, Options{AckWait: 2 * time.Second})
	_ = l // held by e and never ended
	e.mu.Lock()
	e.leased[l.Ref].until = time.Now() // as if Claim's leaseFor were over
	e.mu.Unlock()
	l2 := claimWait(t, other, "crm", 1, time.Minute)[0]
	if string(l2.Delivery.ID) != string(l.Delivery.ID) || l2.Attempts != 1 {
		t.Fatalf("after the lease ran out, other claimed %s with %d attempts; want %s, 1 attempt", l2.Delivery.ID, l2.Attempts, l.Delivery.ID)
	}
	if err := other.Ack(l2.Ref); err != nil {
		t.Fatal(err)
	}
	// Ack removed the attempts: nothing left in the bucket.
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	defer cancel()
	if _, err := e.attempts.Get(ctx, token("r1")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("attempts of an acked delivery: %v, want gone", err)
	}
	// What is left is the purge marker, with a TTL: the bucket does not
	// grow by a marker per retried delivery.
	st, err := e.js.Stream(ctx, "KV_hookgate_attempts")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "$KV.hookgate_attempts."+token("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Nats-TTL") == "" {
		t.Fatalf("the attempts' purge marker has no TTL (headers %v): it would stay forever", m.Header)
	}
}

// A long attempt keeps its lease: InProgress renews it past AckWait, so
// another gateway does not get the delivery meanwhile.
func TestLongAttemptKeepsLease(t *testing.T) {
	s := natstest.Start(t)
	const ackWait = 4 * time.Second
	a := openEngine(t, []string{s.URL()}, Options{AckWait: ackWait})
	b := openEngine(t, []string{s.URL()}, Options{AckWait: ackWait})
	if err := a.Enqueue([]delivery.Delivery{dlv("long", "slow", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, a, "slow", 1, time.Hour)[0]
	end := time.Now().Add(3 * ackWait)
	for time.Now().Before(end) {
		claimNone(t, b, "slow")
		time.Sleep(250 * time.Millisecond)
	}
	if err := a.Ack(l.Ref); err != nil {
		t.Fatalf("ack after %s held: %v", 3*ackWait, err)
	}
	claimNone(t, b, "slow")
}

// A not-before is honoured on every gateway: nobody claims the delivery
// before it, and the wait is no attempt.
func TestNotBeforeNeverEarly(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	nb := time.Now().Add(1500 * time.Millisecond)
	d := dlv("later", "crm", "r", "x")
	d.NotBefore = nb.UnixNano()
	if err := a.Enqueue([]delivery.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	var got []queue.Leased
	deadline := time.Now().Add(engineWait)
	for len(got) == 0 {
		for _, e := range []*Engine{a, b} {
			g, err := e.Claim(nil, "crm", time.Now(), 1, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(g) > 0 {
				if now := time.Now(); now.Before(nb) {
					t.Fatalf("claimed at %v, before its not-before %v", now, nb)
				}
				got = g
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the delayed delivery never came")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got[0].Attempts != 0 {
		t.Fatalf("Attempts = %d after waiting for not-before, want 0", got[0].Attempts)
	}
}

// Over the budget (MaxDepth, MaxBytes) Enqueue wraps queue.ErrFull; an
// ack makes room again.
func TestFull(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{MaxDepth: 2})
	if err := e.Enqueue([]delivery.Delivery{dlv("f1", "t", "r", "x"), dlv("f2", "t", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	err := e.Enqueue([]delivery.Delivery{dlv("f3", "t", "r", "x")})
	if !errors.Is(err, queue.ErrFull) {
		t.Fatalf("enqueue over max_depth: %v, want ErrFull", err)
	}
	if !strings.Contains(err.Error(), "max_depth") {
		t.Fatalf("error %q does not say which budget", err)
	}
	l := claimWait(t, e, "t", 1, time.Minute)[0]
	if err := e.Ack(l.Ref); err != nil {
		t.Fatal(err)
	}
	if err := e.Enqueue([]delivery.Delivery{dlv("f3", "t", "r", "x")}); err != nil {
		t.Fatalf("enqueue after an ack made room: %v", err)
	}

	// Bytes, and an event whose second delivery does not fit leaves
	// nothing of itself behind.
	s2 := natstest.Start(t)
	e2 := openEngine(t, []string{s2.URL()}, Options{MaxBytes: 1500})
	big := strings.Repeat("b", 600)
	err = e2.Enqueue([]delivery.Delivery{dlv("g1", "t", "r", big), dlv("g2", "t", "r", big), dlv("g3", "t", "r", big)})
	if !errors.Is(err, queue.ErrFull) || !strings.Contains(err.Error(), "max_bytes") {
		t.Fatalf("enqueue over max_bytes: %v, want ErrFull naming max_bytes", err)
	}
	if f := e2.Fill(); f.Depth != 0 || f.MaxBytes != 1500 {
		t.Fatalf("after a refused event, Fill = %+v; want nothing stored", f)
	}
}

// Two gateways on one stream: each delivery is held by one at a time,
// and together they deliver every one exactly once.
func TestTwoGatewaysDeliverEachOnce(t *testing.T) {
	s := natstest.Start(t)
	gws := []*Engine{openEngine(t, []string{s.URL()}, Options{}), openEngine(t, []string{s.URL()}, Options{})}
	const n = 600
	var wg sync.WaitGroup
	for g, e := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 2 {
				if err := e.Enqueue([]delivery.Delivery{dlv(fmt.Sprintf("e%d.0", i), "crm", "r", "x")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := make(map[string]int)
	held := make(map[string]bool)
	var total atomic.Int64
	for _, e := range gws {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got []queue.Leased
				deadline := time.Now().Add(4 * engineWait)
				for total.Load() < n && time.Now().Before(deadline) {
					var err error
					got, err = e.Claim(got, "crm", time.Now(), 8, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					for i := range got {
						id := string(got[i].Delivery.ID)
						mu.Lock()
						if held[id] {
							t.Errorf("%s held by two workers at once", id)
						}
						held[id] = true
						seen[id]++
						mu.Unlock()
					}
					for i := range got {
						mu.Lock()
						delete(held, string(got[i].Delivery.ID))
						mu.Unlock()
						if err := e.Ack(got[i].Ref); err != nil {
							t.Error(err)
						}
						total.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("delivered %d distinct of %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times, want once", id, c)
		}
	}
	for _, e := range gws {
		if f := e.Fill(); f.Depth != 0 {
			t.Fatalf("after delivering everything, Fill = %+v", f)
		}
	}
}

// Dead letters keep their attempts; list with filters and cursors, count,
// replay by id (attempts cleared, age reset) and in bulk.
func TestDeadLetters(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{}) // another gateway
	var ds []delivery.Delivery
	for i := 0; i < 5; i++ {
		target, route := "crm", "orders"
		if i%2 == 1 {
			target, route = "erp.eu", "invoices"
		}
		ds = append(ds, dlv(fmt.Sprintf("x%d.0", i), target, route, fmt.Sprintf(`{"n":%d}`, i)))
	}
	if err := a.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	fail := func(status int) delivery.Attempt {
		return delivery.Attempt{At: time.Now(), Duration: 2 * time.Millisecond, Status: status, Error: fmt.Sprintf("status %d", status), Body: bytes.Repeat([]byte("z"), 600)}
	}
	// x0 is retried once first, so it dies with two attempts.
	l := claimWait(t, a, "crm", 1, time.Minute)[0]
	if string(l.Delivery.ID) != "x0.0" {
		t.Fatalf("claimed %s first, want x0.0", l.Delivery.ID)
	}
	if err := a.Retry(l.Ref, time.Now(), fail(503)); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []string{"crm", "erp.eu"} {
		for {
			got, err := a.Claim(nil, tg, time.Now(), 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			for i := range got {
				if err := a.Dead(got[i].Ref, fail(400)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if n, err := b.DeadCount(queue.Filter{}); err != nil || n != 5 {
		t.Fatalf("DeadCount = %d, %v; want 5", n, err)
	}
	if n, err := b.DeadCount(queue.Filter{Target: "erp.eu"}); err != nil || n != 2 {
		t.Fatalf("DeadCount(erp.eu) = %d, %v; want 2", n, err)
	}
	if n, err := b.DeadCount(queue.Filter{Route: "orders"}); err != nil || n != 3 {
		t.Fatalf("DeadCount(route orders) = %d, %v; want 3", n, err)
	}
	// Pages of two, on the other gateway.
	var all []queue.DeadLetter
	cursor := ""
	for page := 0; ; page++ {
		dls, next, err := b.DeadList(queue.Filter{}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, dls...)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("cursor never ends")
		}
		cursor = next
	}
	if len(all) != 5 {
		t.Fatalf("listed %d dead letters over pages, want 5", len(all))
	}
	var x0 *queue.DeadLetter
	for i := range all {
		if string(all[i].Delivery.ID) == "x0.0" {
			x0 = &all[i]
		}
	}
	if x0 == nil || len(x0.Attempts) != 2 || x0.Attempts[0].Status != 503 || x0.Attempts[0].Outcome != delivery.AttemptRetry ||
		x0.Attempts[1].Status != 400 || x0.Attempts[1].Outcome != delivery.AttemptDead || len(x0.Attempts[1].Body) != queue.MaxAttemptBody ||
		string(x0.Delivery.Body) != `{"n":0}` || x0.EnqueuedAt.IsZero() || x0.DeadAt.Before(x0.EnqueuedAt) {
		t.Fatalf("dead letter x0.0 = %+v", x0)
	}
	dls, _, err := b.DeadList(queue.Filter{Target: "erp.eu"}, "", 10)
	if err != nil || len(dls) != 2 || dls[0].Delivery.Target != "erp.eu" || dls[1].Delivery.Target != "erp.eu" {
		t.Fatalf("DeadList(erp.eu) = %d letters, %v", len(dls), err)
	}
	if _, _, err := b.DeadList(queue.Filter{}, "not-a-cursor", 2); !errors.Is(err, queue.ErrBadCursor) {
		t.Fatalf("bad cursor: %v, want ErrBadCursor", err)
	}
	if err := b.Replay("nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("replay of an unknown id: %v, want ErrNotFound", err)
	}

	// Replay by id, from the other gateway: ready again, no attempts, age reset.
	replayedAt := time.Now().UnixNano()
	if err := b.Replay("x0.0"); err != nil {
		t.Fatal(err)
	}
	if err := b.Replay("x0.0"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("second replay: %v, want ErrNotFound", err)
	}
	l = claimWait(t, a, "crm", 1, time.Minute)[0]
	if string(l.Delivery.ID) != "x0.0" || l.Attempts != 0 || l.EnqueuedAt < replayedAt {
		t.Fatalf("replayed: %s, attempts %d, enqueued %d (replayed at %d)", l.Delivery.ID, l.Attempts, l.EnqueuedAt, replayedAt)
	}
	// It dies again: a new dead letter (a new generation is not dropped
	// as a duplicate), with one attempt.
	if err := a.Dead(l.Ref, fail(410)); err != nil {
		t.Fatal(err)
	}
	dls, _, err = b.DeadList(queue.Filter{Target: "crm", Route: "orders"}, "", 10)
	if err != nil || len(dls) != 3 {
		t.Fatalf("DeadList(crm, orders) = %d, %v; want 3", len(dls), err)
	}
	if last := dls[2]; string(last.Delivery.ID) != "x0.0" || len(last.Attempts) != 1 {
		t.Fatalf("re-dead letter: %s with %d attempts", last.Delivery.ID, len(last.Attempts))
	}

	// ReplayAll by target, with progress.
	var progress []int
	n, err := a.ReplayAll(queue.Filter{Target: "erp.eu"}, 0, func(done int) { progress = append(progress, done) })
	if err != nil || n != 2 || len(progress) == 0 || progress[len(progress)-1] != 2 {
		t.Fatalf("ReplayAll(erp.eu) = %d, %v, progress %v", n, err, progress)
	}
	got := claimWait(t, b, "erp.eu", 10, time.Minute)
	for len(got) < 2 {
		got = append(got, claimWait(t, b, "erp.eu", 10, time.Minute)...)
	}
	if n, _ := a.DeadCount(queue.Filter{}); n != 3 {
		t.Fatalf("after replaying 2 of 5, DeadCount = %d, want 3", n)
	}
	n, err = a.ReplayAll(queue.Filter{}, 1, nil)
	if err != nil || n != 1 {
		t.Fatalf("ReplayAll limit 1 = %d, %v", n, err)
	}
	if n, _ := a.DeadCount(queue.Filter{}); n != 2 {
		t.Fatalf("after ReplayAll limit 1, DeadCount = %d, want 2", n)
	}
}

// Stats and Fill come from the servers: two gateways show the same.
func TestStatsSameOnEveryGateway(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{MaxDepth: 100})
	b := openEngine(t, []string{s.URL()}, Options{MaxDepth: 100})
	if err := a.Enqueue([]delivery.Delivery{dlv("s1", "crm.eu", "r", "xx"), dlv("s2", "crm.eu", "r", "xx"), dlv("s3", "erp", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, a, "erp", 1, time.Minute)[0]
	if err := a.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // an age to see
	l = claimWait(t, b, "crm.eu", 1, time.Minute)[0]
	for name, e := range map[string]*Engine{"a": a, "b": b} {
		e.cache.invalidate()
		st := e.Stats()
		c, erp := st["crm.eu"], st["erp"]
		if c.Depth != 2 || c.Bytes <= 0 || c.OldestAge <= 0 || c.Dead != 0 {
			t.Errorf("gateway %s: crm.eu %+v; want depth 2, bytes, an age, no dead", name, c)
		}
		if erp.Depth != 0 || erp.Dead != 1 {
			t.Errorf("gateway %s: erp %+v; want depth 0, 1 dead", name, erp)
		}
		wantLeased := map[string]int{"a": 0, "b": 1}[name]
		if c.Leased != wantLeased {
			t.Errorf("gateway %s: crm.eu leased %d, want %d (this gateway's)", name, c.Leased, wantLeased)
		}
		if f := e.Fill(); f.Depth != 2 || f.MaxDepth != 100 || f.Bytes <= 0 {
			t.Errorf("gateway %s: Fill %+v", name, f)
		}
	}
	_ = b.Ack(l.Ref)
}

func TestTargetState(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	if st, err := a.TargetState("crm.eu"); err != nil || st != nil {
		t.Fatalf("unset state = %q, %v", st, err)
	}
	if err := a.SetTargetState("crm.eu", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if st, err := b.TargetState("crm.eu"); err != nil || !bytes.Equal(st, []byte{1, 2, 3}) {
		t.Fatalf("state on the other gateway = %v, %v", st, err)
	}
	if err := b.SetTargetState("crm.eu", nil); err != nil {
		t.Fatal(err)
	}
	if st, err := a.TargetState("crm.eu"); err != nil || st != nil {
		t.Fatalf("cleared state = %q, %v", st, err)
	}
	if err := a.Health(); err != nil {
		t.Fatalf("Health = %v", err)
	}
}

// A stream of the same name that hookgate cannot use fails Open with
// what differs; limits that differ are brought to the configuration.
func TestExistingStream(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	defer cancel()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "other", Subjects: []string{"other.q.*"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(config.NATS{URLs: []string{s.URL()}, Stream: "other"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `stream "other" exists with Limits retention, not WorkQueue`) ||
		!strings.Contains(err.Error(), "set [queue.nats] stream to another name") {
		t.Fatalf("Open on a limits stream: %v", err)
	}
	// The first engine's stream, with a new budget.
	e2 := openEngine(t, []string{s.URL()}, Options{MaxDepth: 7, MaxBytes: 1 << 20})
	info, err := e2.work.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != 7 || info.Config.MaxBytes != 1<<20 || info.Config.Discard != jetstream.DiscardNew {
		t.Fatalf("stream limits %d msgs, %d bytes, %v; want the configuration's", info.Config.MaxMsgs, info.Config.MaxBytes, info.Config.Discard)
	}
}

// Open against nothing says which server and why; no secret in it.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := config.NATS{URLs: []string{"nats://hookgate:s3cr3t-pw@" + addr}, Token: config.NewSecret("tok-s3cr3t", "${env:NATS_TOKEN}")}
	start := time.Now()
	_, err = Open(cfg, Options{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open against a closed port succeeded")
	}
	msg := err.Error()
	want := "queue: nats: cannot reach nats://redacted@" + addr + ": connection refused; check [queue.nats] urls and that nats-server runs with JetStream (-js)"
	if msg != want {
		t.Fatalf("Open error:\n got %q\nwant %q", msg, want)
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Fatalf("Open error shows a secret: %q", msg)
	}
	if time.Since(start) > engineWait {
		t.Fatalf("Open took %s", time.Since(start))
	}

	// A server that wants a token, given the wrong one.
	s := natstest.Start(t, func(o *server.Options) { o.Authorization = "right-token" })
	_, err = Open(config.NATS{URLs: []string{s.URL()}, Token: config.NewSecret("wrong-token", "")}, Options{})
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("Open with a wrong token: %v", err)
	}
	e, err := Open(config.NATS{URLs: []string{s.URL()}, Token: config.NewSecret("right-token", "")}, Options{})
	if err != nil {
		t.Fatalf("Open with the right token: %v", err)
	}
	e.Close()
}

// NATS down: Enqueue fails within its bound (ingest answers 503) and
// Health says so; NATS back: Enqueue works again and nothing
// acknowledged before or after is lost.
func TestServerDownThenBack(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{Timeout: 2 * time.Second})
	if err := e.Enqueue([]delivery.Delivery{dlv("before", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	done := make(chan error, 1)
	go func() { done <- e.Enqueue([]delivery.Delivery{dlv("during", "crm", "r", "x")}) }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, queue.ErrFull) {
			t.Fatalf("Enqueue with NATS down: %v; want a not-stored error", err)
		}
		if !strings.Contains(err.Error(), "not stored") {
			t.Fatalf("Enqueue error %q", err)
		}
	case <-time.After(engineWait):
		t.Fatal("Enqueue hung with NATS down")
	}
	if err := e.Health(); err == nil {
		t.Fatal("Health is nil with NATS down")
	}
	s.Restart()
	deadline := time.Now().Add(engineWait)
	for {
		err := e.Enqueue([]delivery.Delivery{dlv("after", "crm", "r", "x")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Enqueue after NATS came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		for _, l := range claimWait(t, e, "crm", 10, time.Minute) {
			got[string(l.Delivery.ID)] = true
			if err := e.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !got["before"] || !got["after"] {
		t.Fatalf("delivered %v; want before and after", got)
	}
	for deadline := time.Now().Add(engineWait); e.Health() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("Health after NATS came back: %v", e.Health())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close gives back what this gateway holds, so another takes it at once
// (not after AckWait).
func TestCloseReleases(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{AckWait: time.Hour})
	b := openEngine(t, []string{s.URL()}, Options{AckWait: time.Hour})
	if err := a.Enqueue([]delivery.Delivery{dlv("c1", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, a, "crm", 1, time.Minute)[0]
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(l.Ref); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	if got := claimWait(t, b, "crm", 1, time.Minute); string(got[0].Delivery.ID) != "c1" {
		t.Fatalf("other gateway claimed %s", ids(got))
	}
}

// A gateway that dies (its connection gone, no Close) loses its leases
// within AckWait: another gateway delivers what it held, attempts intact.
func TestDeadGatewayLeasesComeBack(t *testing.T) {
	s := natstest.Start(t)
	opts := Options{AckWait: 2 * time.Second}
	a := openEngine(t, []string{s.URL()}, opts)
	b := openEngine(t, []string{s.URL()}, opts)
	var ds []delivery.Delivery
	for i := 0; i < 5; i++ {
		ds = append(ds, dlv(fmt.Sprintf("k%d.0", i), "crm", "r", "x"))
	}
	if err := a.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	held := claimWait(t, a, "crm", 5, time.Hour)
	if len(held) != 5 {
		t.Fatalf("claimed %d, want 5", len(held))
	}
	a.nc.Close() // kill -9: nothing given back, no Nak
	got := map[string]bool{}
	for len(got) < 5 {
		for _, l := range claimWait(t, b, "crm", 5, time.Minute) {
			got[string(l.Delivery.ID)] = true
			if l.Attempts != 0 {
				t.Errorf("%s: Attempts %d after a lost lease, want 0", l.Delivery.ID, l.Attempts)
			}
			if err := b.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A publish repeated with the same delivery id (a retried Enqueue after
// a crash or a timeout) is dropped by the stream's duplicate window.
func TestRepeatedEnqueueStoredOnce(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	for i := 0; i < 2; i++ {
		if err := e.Enqueue([]delivery.Delivery{dlv("same.0", "crm", "r", "x")}); err != nil {
			t.Fatal(err)
		}
	}
	if f := e.Fill(); f.Depth != 1 {
		t.Fatalf("after enqueueing one delivery id twice, depth %d, want 1", f.Depth)
	}
	// An event of several deliveries is one atomic batch: its repeat is
	// refused whole by the duplicate window, which Enqueue takes as stored.
	ev := []delivery.Delivery{dlv("pair.0", "crm", "r", "x"), dlv("pair.1", "sms", "r", "x")}
	for i := 0; i < 2; i++ {
		if err := e.Enqueue(ev); err != nil {
			t.Fatalf("enqueue %d of a two-delivery event: %v", i+1, err)
		}
	}
	for _, target := range []string{"crm", "sms"} {
		n := 0
		for _, l := range claimWait(t, e, target, 1, time.Minute) {
			n++
			if err := e.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := e.Claim(nil, target, time.Now(), 10, time.Minute); len(got)+n != map[string]int{"crm": 2, "sms": 1}[target] {
			t.Errorf("%s: %d deliveries after the event was enqueued twice", target, len(got)+n)
		}
	}
}
