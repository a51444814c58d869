package natsq

// Regression tests from the review of the JetStream backend (issue 13).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// Deliveries waiting for a not-before (or a retry's backoff) are put back
// with NakWithDelay, and the server counts each as pending an ack until it
// is due. With a finite MaxAckPending on the target's consumer, enough of
// them (20000 was the limit) stalled the consumer: a delivery due now, for
// the same target, was not handed to any gateway until the delayed ones
// came due, an hour later here.
func TestDelayedDeliveriesNeverBlockReadyOnes(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	const delayed = 20000 // the consumer's MaxAckPending before the fix
	later := time.Now().Add(time.Hour).UnixNano()
	ds := make([]delivery.Delivery, 0, 500)
	for i := 0; i < delayed; i++ {
		d := dlv(fmt.Sprintf("later-%d", i), "crm", "r", "x")
		d.NotBefore = later
		ds = append(ds, d)
		if len(ds) == cap(ds) {
			if err := e.Enqueue(ds); err != nil {
				t.Fatal(err)
			}
			ds = ds[:0]
		}
	}
	// The consumer as an earlier version created it: the engine updates
	// it at its first claim.
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	_, err := e.work.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: e.n.consumer("crm"), FilterSubject: e.n.workSubject("crm"),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: defaultAckWait, MaxDeliver: -1, MaxAckPending: delayed,
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// Every delayed delivery is fetched once and put back until its time,
	// as the dispatcher's claims do.
	c, err := e.consumer("crm")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(engineWait)
	for {
		if got, err := e.Claim(nil, "crm", time.Now(), 1000, time.Minute); err != nil || len(got) > 0 {
			t.Fatalf("claimed %d deliveries due in an hour (err %v)", len(got), err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), engineWait)
		info, err := c.Info(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == delayed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delayed deliveries were not all put back: %d not fetched, %d waiting", info.NumPending, info.NumAckPending)
		}
	}
	if err := e.Enqueue([]delivery.Delivery{dlv("now", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	got := claimWait(t, e, "crm", 10, time.Minute)
	if len(got) != 1 || string(got[0].Delivery.ID) != "now" {
		t.Fatalf("claimed %s, want the delivery due now", ids(got))
	}
}

// A refresh of the queue figures (every /metrics scrape or admin call a
// second apart, on every gateway) counted each target's dead letters by
// creating, then deleting, a consumer on the dead-letter stream: two
// changes of the cluster's metadata per target per refresh, and a walk of
// the target's letters each time. Counting consumers now live on, so a
// refresh only asks them.
func TestStatsRefreshCreatesNoConsumers(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	targets := []string{"crm", "erp.eu", "sms"}
	for i, tg := range targets {
		if err := e.Enqueue([]delivery.Delivery{dlv(fmt.Sprintf("d%d", i), tg, "r", "x")}); err != nil {
			t.Fatal(err)
		}
		l := claimWait(t, e, tg, 1, time.Minute)[0]
		if err := e.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400}); err != nil {
			t.Fatal(err)
		}
	}
	e.Stats() // the first refresh may set up what later ones use

	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("$JS.API.CONSUMER.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	changes := func() int {
		t.Helper()
		if err := nc.Flush(); err != nil { // what the server routed before is in
			t.Fatal(err)
		}
		n := 0
		for {
			m, err := sub.NextMsg(0)
			if err != nil {
				return n
			}
			if strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.CREATE.") || strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.DURABLE.CREATE.") ||
				strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.DELETE.") {
				n++
			}
		}
	}
	for i := 0; i < 3; i++ {
		e.cache.invalidate()
		st := e.Stats()
		for _, tg := range targets {
			if st[tg].Dead != 1 {
				t.Fatalf("refresh %d: %s has %d dead letters, want 1 (%+v)", i, tg, st[tg].Dead, st)
			}
		}
	}
	if n := changes(); n != 0 {
		t.Fatalf("3 refreshes of the figures of %d targets created or deleted %d consumers, want 0", len(targets), n)
	}
	// The counts follow new letters and replays.
	if err := e.Replay("d0"); err != nil {
		t.Fatal(err)
	}
	if err := e.Enqueue([]delivery.Delivery{dlv("d9", "sms", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, e, "sms", 1, time.Minute)[0]
	if err := e.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400}); err != nil {
		t.Fatal(err)
	}
	// The server counts a new letter a moment after its publish was
	// acknowledged: figures may lag it that long.
	deadline := time.Now().Add(engineWait)
	for {
		e.cache.invalidate()
		st := e.Stats()
		if st["crm"].Dead == 0 && st["erp.eu"].Dead == 1 && st["sms"].Dead == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a replay and a new dead letter: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := changes(); n != 0 {
		t.Fatalf("refreshing the figures after a change created or deleted %d consumers, want 0", n)
	}
	// DeadCount, an operator's question, stays exact at once.
	if n, err := e.DeadCount(queue.Filter{Target: "sms"}); err != nil || n != 2 {
		t.Fatalf("DeadCount(sms) = %d, %v; want 2", n, err)
	}
}

// The engine keeps each target's consumer handle. When the consumer is
// removed while gateways run (an operator's `nats consumer rm` to reset
// it, or lost with its node's store), claims for the target failed from
// then on, on every gateway, until each was restarted: its deliveries
// waited forever. A claim now creates the consumer again.
func TestClaimRecreatesARemovedConsumer(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	if err := e.Enqueue([]delivery.Delivery{dlv("first", "crm.eu", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, e, "crm.eu", 1, time.Minute)[0]
	if err := e.Ack(l.Ref); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	defer cancel()
	if err := e.work.DeleteConsumer(ctx, e.n.consumer("crm.eu")); err != nil {
		t.Fatal(err)
	}
	if err := e.Enqueue([]delivery.Delivery{dlv("second", "crm.eu", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	var got []queue.Leased
	var err error
	// The first claim may fail: it finds the consumer gone. And the new
	// consumer may offer the delivery a moment after it was created.
	// Before the fix every claim failed, for good.
	for deadline := time.Now().Add(engineWait); len(got) == 0 && time.Now().Before(deadline); {
		if got, err = e.Claim(nil, "crm.eu", time.Now(), 1, time.Minute); len(got) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(got) != 1 || string(got[0].Delivery.ID) != "second" {
		t.Fatalf("after the consumer was removed, claims for %s got %s (last error %v), want the new delivery", engineWait, ids(got), err)
	}
}

// A URL that does not parse (a password with a '%' not written as %25)
// failed Open with the URL parser's error, which quotes the whole URL:
// the password went to the terminal and the logs.
func TestOpenBadURLShowsNoSecret(t *testing.T) {
	for _, u := range []string{"nats://hookgate:s3cr%zz3t@127.0.0.1:4222", "nats://s3cr%zz3t@127.0.0.1:4222"} {
		_, err := Open(config.NATS{URLs: []string{"nats://127.0.0.1:4222", u}}, Options{ConnectTimeout: time.Second})
		if err == nil {
			t.Fatalf("Open with %q succeeded", u)
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cr") {
			t.Fatalf("Open error shows the password: %q", msg)
		}
		if !strings.Contains(msg, "[queue.nats] urls") || !strings.Contains(msg, "second") {
			t.Fatalf("Open error %q does not say which URL to fix", msg)
		}
	}
}

// Deliveries ahead in the stream that are not due yet (a route's delay)
// were each fetched once and put back, and a claim that put back all it
// fetched returned nothing: the dispatcher then waits for its next poll
// (250 ms) or wake. A lane claiming one at a time (a rate limit, the
// breaker's probe) got past 2000 delayed deliveries in 2000 claims, more
// than eight minutes of polls, before a delivery due now went out. A
// claim now looks past a full fetch of deliveries not due.
func TestDelayedDeliveriesDoNotHoldUpClaims(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	const delayed = 2000
	later := time.Now().Add(time.Hour).UnixNano()
	ds := make([]delivery.Delivery, 0, 500)
	for i := 0; i < delayed; i++ {
		d := dlv(fmt.Sprintf("later-%d", i), "crm", "r", "x")
		d.NotBefore = later
		ds = append(ds, d)
		if len(ds) == cap(ds) {
			if err := e.Enqueue(ds); err != nil {
				t.Fatal(err)
			}
			ds = ds[:0]
		}
	}
	if err := e.Enqueue([]delivery.Delivery{dlv("now", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	const claims = 10
	for i := 1; i <= claims; i++ {
		got, err := e.Claim(nil, "crm", time.Now(), 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			if string(got[0].Delivery.ID) != "now" {
				t.Fatalf("claimed %s, want the delivery due now", got[0].Delivery.ID)
			}
			return
		}
		// The consumer may learn of the last delivery a moment after the
		// stream stored it; before the fix it took 2000 claims.
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d claims of one found nothing: the delivery due now waits behind %d not due", claims, delayed)
}

// A target with nothing pending and no dead letters is not in the figures
// (the dispatcher adds the configured ones): before, every target that
// ever had a consumer on the stream stayed in them for good, on every
// gateway and across restarts, so a target renamed or removed from the
// config kept its zero rows in /admin/targets and its series in /metrics.
func TestStatsLeaveOutTargetsWithNothing(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	for _, tg := range []string{"old", "kept"} {
		if err := e.Enqueue([]delivery.Delivery{dlv("d-"+tg, tg, "r", "x")}); err != nil {
			t.Fatal(err)
		}
		l := claimWait(t, e, tg, 1, time.Minute)[0]
		if tg == "old" {
			if err := e.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		} else if err := e.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400}); err != nil {
			t.Fatal(err)
		}
	}
	e.cache.invalidate()
	st := e.Stats()
	if _, ok := st["old"]; ok {
		t.Fatalf("figures list target old, which has nothing pending and no dead letters: %+v", st)
	}
	if st["kept"].Dead != 1 {
		t.Fatalf("figures lost target kept's dead letter: %+v", st)
	}
}

// Two gateways that briefly held the same delivery (a lease that ran out
// under a slow attempt) both record their attempt: the list is written by
// compare-and-set, not overwritten by the second writer.
func TestAttemptsOfADoubleHoldBothCounted(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	// What each gateway read at its Claim: nothing stored yet.
	heldByA, heldByB := &lease{id: []byte("dbl.0")}, &lease{id: []byte("dbl.0")}
	if err := a.recordAttempt(heldByA, &delivery.Attempt{At: time.Now(), Status: 503, Error: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.recordAttempt(heldByB, &delivery.Attempt{At: time.Now(), Status: 502, Error: "b"}, 0); err != nil {
		t.Fatal(err)
	}
	// A third write from a stale read (A again, its revision outdated).
	if err := a.recordAttempt(heldByA, &delivery.Attempt{At: time.Now(), Status: 500, Error: "c"}, 0); err != nil {
		t.Fatal(err)
	}
	ent, err := a.attempts.Get(context.Background(), a.attemptKey(heldByA.id))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAttempts(ent.Value())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Error != "a" || got[1].Error != "b" || got[2].Error != "c" {
		t.Fatalf("recorded %d attempts %+v, want a, b, c", len(got), got)
	}
}

// A retried delivery that comes back before its retry's time (the
// NakWithDelay that should have held it was lost with a connection, so
// only the lease brought it back) is put back until then, not sent early.
func TestEarlyRedeliveryOfARetryPutBack(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	if err := e.Enqueue([]delivery.Delivery{dlv("early.0", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	l := claimWait(t, e, "crm", 1, time.Minute)[0]
	ls, err := e.take(l.Ref)
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(3 * time.Second)
	if err := e.recordAttempt(ls, &delivery.Attempt{At: time.Now(), Status: 503, Error: "retry later"}, due.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := ls.msg.Nak(); err != nil { // the delayed Nak, lost: back at once
		t.Fatal(err)
	}
	for time.Now().Before(due.Add(-time.Second)) {
		if got, err := e.Claim(nil, "crm", time.Now(), 1, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("claimed %d before the retry's time (%v)", len(got), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again := claimWait(t, e, "crm", 1, time.Minute)[0]
	if time.Now().Before(due) {
		t.Errorf("claimed %v before the retry's time", due.Sub(time.Now()))
	}
	if again.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1 (the put-backs are not attempts)", again.Attempts)
	}
}

// A worker whose lease ran out while it still held the delivery, which
// came back to this same gateway and was claimed again, cannot end the
// new claim: its Ref names its own claim only. Before, a Ref was the
// stream sequence, so the stale worker's Release took the new holder's
// lease and put the message back under it.
func TestStaleHolderCannotEndTheNewClaim(t *testing.T) {
	s := natstest.Start(t)
	// The new claim's lease is renewed every AckWait/4: 2 s leaves 1.5 s
	// for a late renewal on a loaded machine (1 s left 750 ms).
	const ackWait = 2 * time.Second
	e := openEngine(t, []string{s.URL()}, Options{AckWait: ackWait})
	if err := e.Enqueue([]delivery.Delivery{dlv("stale.0", "crm", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	// leaseFor is over at once: nothing renews the first claim, and the
	// server hands the message out again after AckWait.
	first := claimWait(t, e, "crm", 1, time.Millisecond)[0]
	second := claimWait(t, e, "crm", 1, time.Minute)[0]
	if string(second.Delivery.ID) != "stale.0" {
		t.Fatalf("claimed %s again, want stale.0", second.Delivery.ID)
	}
	if second.Ref == first.Ref {
		t.Fatalf("the second claim has the first one's Ref %d", first.Ref)
	}
	// The stale worker gives up now. Its own claim is forgotten once its
	// lease is an AckWait past its end (keepLeases), or still held, in
	// which case Release puts back the old delivery only.
	time.Sleep(ackWait + 2*ackWait/4)
	if err := e.Release(first.Ref); err != nil && !errors.Is(err, queue.ErrNotLeased) {
		t.Fatalf("stale Release: %v", err)
	}
	// The new holder still holds it, and its Ack removes the message.
	if err := e.Ack(second.Ref); err != nil {
		t.Fatalf("the new holder's Ack: %v", err)
	}
	time.Sleep(ackWait + ackWait/2)
	if got, err := e.Claim(nil, "crm", time.Now(), 1, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("after the Ack, Claim gave %d deliveries (err %v), want none", len(got), err)
	}
}
