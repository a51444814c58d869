package natsq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// ordered is delivery n of key, for a fifo target "crm" (dispatch sets
// Ordered and OrderKey at enqueue; "" is the whole target's sequence).
func ordered(key string, n int) delivery.Delivery {
	d := dlv(fmt.Sprintf("%s-%d", key, n), "crm", "r", fmt.Sprintf(`{"k":%q,"n":%d}`, key, n))
	d.Ordered, d.OrderKey = true, []byte(key)
	return d
}

// waitingFor is how many deliveries of target wait on e.
func (e *Engine) waitingFor(target string) int {
	n, _ := e.waiting(target)
	return n
}

// waiting is how many deliveries of target wait on e, and the most of one
// key.
func (e *Engine) waiting(target string) (all, most int) {
	e.fifo.mu.Lock()
	defer e.fifo.mu.Unlock()
	for _, kw := range e.fifo.keys[target] {
		all += len(kw.msgs)
		most = max(most, len(kw.msgs))
	}
	return all, most
}

// keyN reads back the key and place of an ordered delivery's id.
func keyN(id []byte) (string, int) {
	s := string(id)
	i := strings.LastIndexByte(s, '-')
	n, _ := strconv.Atoi(s[i+1:])
	return s[:i], n
}

func enqueueAll(t testing.TB, e *Engine, ds ...delivery.Delivery) {
	t.Helper()
	for i := range ds { // one by one: ingest order is the order of these calls
		if err := e.Enqueue(ds[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

// sent is one attempt the fake target received.
type sent struct {
	id       string
	key      string
	n        int
	ok       bool
	gw       int // which gateway sent it
	attempts int // Leased.Attempts at the claim
}

// orderSink plays a fifo target behind several gateways: it records every
// attempt, and any two attempts of one key (or, with whole, of any key) in
// flight together. fail decides whether an attempt fails (and is retried).
type orderSink struct {
	whole bool

	mu       sync.Mutex
	inFlight map[string]int
	overlap  []string
	log      []sent
	ok       map[string]bool
	fail     func(s sent, log []sent) bool
}

func newSink(fail func(s sent, log []sent) bool) *orderSink {
	return &orderSink{inFlight: map[string]int{}, ok: map[string]bool{}, fail: fail}
}

func (o *orderSink) send(gw int, l *queue.Leased) bool {
	key, n := keyN(l.Delivery.ID)
	s := sent{id: string(l.Delivery.ID), key: key, n: n, gw: gw, attempts: l.Attempts}
	slot := key
	if o.whole {
		slot = ""
	}
	o.mu.Lock()
	o.inFlight[slot]++
	if o.inFlight[slot] > 1 {
		o.overlap = append(o.overlap, s.id)
	}
	s.ok = o.fail == nil || !o.fail(s, o.log)
	o.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // room for a second attempt of the key to overlap, were it handed out
	o.mu.Lock()
	o.inFlight[slot]--
	o.log = append(o.log, s)
	if s.ok {
		o.ok[s.id] = true
	}
	o.mu.Unlock()
	return s.ok
}

func (o *orderSink) delivered() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ok)
}

// check fails t unless, per key, every delivery was first attempted only
// once the one before it was delivered (or is in dead), and no two of a
// key were in flight together. An attempt again of a delivery already
// delivered (at least once, after a lost lease) is allowed.
func (o *orderSink) check(t *testing.T, dead map[string]bool) []sent {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.overlap) != 0 {
		t.Errorf("attempts of one key in flight together: %v", o.overlap)
	}
	done := map[string]int{}
	seen := map[string]bool{}
	for i, s := range o.log {
		if !seen[s.id] && s.n != done[s.key]+1 {
			t.Fatalf("attempt %d: %s first sent while #%d of key %q was not yet delivered; attempts: %v", i, s.id, done[s.key]+1, s.key, o.log)
		}
		seen[s.id] = true
		if (s.ok || dead[s.id]) && s.n > done[s.key] {
			done[s.key] = s.n
		}
	}
	return append([]sent(nil), o.log...)
}

// gateways runs workers claiming concurrently from each engine, as lanes
// on separate gateways do, each claiming up to batch at a time; a failed
// attempt is retried after retryIn. It returns when want deliveries were
// delivered, failing t after engineWait. Any error fails t too.
func gateways(t *testing.T, sink *orderSink, want, workers, batch int, retryIn time.Duration, es ...*Engine) {
	t.Helper()
	errs := deliver(t, sink, want, workers, batch, retryIn, es...)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
}

// deliver is gateways, going on after an error (a claim, ack or retry
// failing while NATS moves a leader), as a lane does; it returns them.
func deliver(t *testing.T, sink *orderSink, want, workers, batch int, retryIn time.Duration, es ...*Engine) []error {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	failed := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	for gw, e := range es {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got []queue.Leased
				for {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					got, err = e.Claim(got, "crm", time.Now(), batch, time.Minute)
					if err != nil {
						failed(err)
						continue
					}
					if len(got) == 0 {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					for i := range got {
						l := &got[i]
						if sink.send(gw, l) {
							err = e.Ack(l.Ref)
						} else {
							err = e.Retry(l.Ref, time.Now().Add(retryIn), delivery.Attempt{At: time.Now(), Status: 503, Error: "status 503"})
						}
						if err != nil {
							failed(err)
						}
					}
				}
			}()
		}
	}
	deadline := time.Now().Add(engineWait) // a failure timeout, not a measurement
	for sink.delivered() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := sink.delivered(); n < want {
		sink.mu.Lock()
		last := sink.log[max(0, len(sink.log)-20):]
		sink.mu.Unlock()
		t.Fatalf("%d of %d deliveries delivered after %s (%d errors: %v); last attempts: %v", n, want, engineWait, len(errs), errs, last)
	}
	return errs
}

// TestFIFOFailingKeyWaitsOthersFlowTwoGateways is issue 15's scenario on
// NATS with two gateways claiming at once: key A fails its first 3
// attempts, and keeps failing until all of B has arrived (were B stuck
// behind A, nothing would arrive). Later A deliveries wait, B flows, A
// arrives in order, and never two of a key in flight across gateways.
func TestFIFOFailingKeyWaitsOthersFlowTwoGateways(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	for n := 1; n <= 5; n++ {
		enqueueAll(t, a, ordered("A", n), ordered("B", n))
	}
	sink := newSink(func(x sent, log []sent) bool {
		if x.key != "A" {
			return false
		}
		failed, bDone := 0, 0
		for _, y := range log {
			if y.key == "A" && !y.ok {
				failed++
			}
			if y.key == "B" && y.ok {
				bDone++
			}
		}
		return failed < 3 || bDone < 5
	})
	gateways(t, sink, 10, 2, 3, 20*time.Millisecond, a, b)
	log := sink.check(t, nil)

	var aSeq []string
	aFailed, bBeforeA1 := 0, 0
	a1Done := false
	gws := map[int]bool{}
	for _, x := range log {
		gws[x.gw] = true
		switch {
		case x.key == "A" && !x.ok:
			aFailed++
			if x.id != "A-1" {
				t.Errorf("%s failed; only A's head should have been attempted while it failed", x.id)
			}
		case x.key == "A":
			aSeq = append(aSeq, x.id)
			if x.id == "A-1" {
				a1Done = true
				if x.attempts < 3 {
					t.Errorf("A-1 delivered at its claim with Attempts %d, want at least 3 recorded", x.attempts)
				}
			}
		case x.key == "B" && x.ok && !a1Done:
			bBeforeA1++
		}
	}
	if aFailed < 3 {
		t.Errorf("A failed %d times, want at least 3", aFailed)
	}
	if got := strings.Join(aSeq, " "); got != "A-1 A-2 A-3 A-4 A-5" {
		t.Errorf("A delivered as %s, want A-1 A-2 A-3 A-4 A-5", got)
	}
	if bBeforeA1 != 5 {
		t.Errorf("%d of B's 5 delivered while A's head failed, want all 5", bBeforeA1)
	}
	if len(gws) != 2 {
		t.Logf("only one gateway sent anything (%v); the order held anyway", gws)
	}
}

// TestFIFOWholeTargetOneAtATime: without order_key the whole target is
// one sequence: two gateways, three workers each, claiming three at a
// time, and never two deliveries in flight; every fifth first attempt
// fails and is retried, holding up the rest.
func TestFIFOWholeTargetOneAtATime(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	const n = 24
	ds := make([]delivery.Delivery, n)
	for i := range ds {
		ds[i] = ordered("", i+1)
	}
	enqueueAll(t, a, ds...)
	sink := newSink(func(x sent, log []sent) bool {
		if x.n%5 != 0 {
			return false
		}
		for _, y := range log {
			if y.id == x.id {
				return false // failed once already
			}
		}
		return true
	})
	sink.whole = true
	gateways(t, sink, n, 3, 3, 10*time.Millisecond, a, b)
	log := sink.check(t, nil)
	var got []int
	for _, x := range log {
		if x.ok {
			got = append(got, x.n)
		}
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("delivered in the order %v, want 1..%d", got, n)
		}
	}
}

// claimAny claims one delivery of "crm" from whichever engine has one.
func claimAny(t *testing.T, es ...*Engine) (*Engine, queue.Leased) {
	t.Helper()
	deadline := time.Now().Add(engineWait)
	for {
		for _, e := range es {
			got, err := e.Claim(nil, "crm", time.Now(), 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 1 {
				t.Fatalf("claimed %s at once: two of one key", ids(got))
			}
			if len(got) == 1 {
				return e, got[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing to claim after %s", engineWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFIFODeadHeadLetsNextGo: while a key's head is held, the rest of the
// key is not handed out on either gateway; once it is dead-lettered the
// next goes, and a replay of it goes to the back of its key.
func TestFIFODeadHeadLetsNextGo(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	enqueueAll(t, a, ordered("A", 1), ordered("A", 2), ordered("A", 3))

	holder, head := claimAny(t, b, a)
	if string(head.Delivery.ID) != "A-1" {
		t.Fatalf("first claim got %s, want A-1", head.Delivery.ID)
	}
	claimNone(t, a, "crm")
	claimNone(t, b, "crm")
	if err := holder.Dead(head.Ref, delivery.Attempt{At: time.Now(), Status: 400, Error: "status 400"}); err != nil {
		t.Fatal(err)
	}
	// Replayed now, A-1 goes behind A-3: the key went on without it.
	if err := a.Replay("A-1"); err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 3 {
		e, l := claimAny(t, a, b)
		order = append(order, string(l.Delivery.ID))
		claimNone(t, a, "crm")
		claimNone(t, b, "crm")
		if err := e.Ack(l.Ref); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(order, " "); got != "A-2 A-3 A-1" {
		t.Fatalf("after A-1 died and was replayed: %s, want A-2 A-3 A-1", got)
	}
}

// TestFIFOGatewayKilledMidSequence: a gateway that dies (its connection
// dropped, no Close) holding a key's head and the rest of the key waiting
// behind it: the other gateway gets nothing of the key until the lease
// ends, then the head (its attempt counted) and the rest, in order.
func TestFIFOGatewayKilledMidSequence(t *testing.T) {
	s := natstest.Start(t)
	opts := Options{AckWait: time.Second}
	a := openEngine(t, []string{s.URL()}, opts)
	b := openEngine(t, []string{s.URL()}, opts)
	enqueueAll(t, a, ordered("A", 1), ordered("A", 2), ordered("A", 3), ordered("B", 1))

	got := claimWait(t, a, "crm", 10, time.Minute)
	if ids(got) != "A-1 B-1 " {
		t.Fatalf("claimed %s, want A-1 B-1 (A-2, A-3 wait)", ids(got))
	}
	if n := a.waitingFor("crm"); n != 2 {
		t.Fatalf("%d deliveries wait on the gateway, want 2 (A-2, A-3)", n)
	}
	if err := a.Retry(got[0].Ref, time.Now(), delivery.Attempt{At: time.Now(), Status: 503, Error: "status 503"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(got[1].Ref); err != nil {
		t.Fatal(err)
	}
	again := claimWait(t, a, "crm", 10, time.Minute)
	if ids(again) != "A-1 " {
		t.Fatalf("claimed %s, want A-1 again", ids(again))
	}
	a.nc.Close() // kill -9: no Nak, no Close; the server keeps the leases until AckWait

	var order []string
	deadline := time.Now().Add(engineWait)
	for len(order) < 3 {
		got, err := b.Claim(nil, "crm", time.Now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 1 {
			t.Fatalf("claimed %s at once: two of one key", ids(got))
		}
		if len(got) == 1 {
			l := got[0]
			order = append(order, string(l.Delivery.ID))
			if string(l.Delivery.ID) == "A-1" && l.Attempts != 1 {
				t.Errorf("A-1 came back with Attempts %d, want the 1 recorded before the kill", l.Attempts)
			}
			if err := b.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the kill the other gateway delivered %v in %s, want A-1 A-2 A-3", order, engineWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Join(order, " "); got != "A-1 A-2 A-3" {
		t.Fatalf("after the kill: %s, want A-1 A-2 A-3", got)
	}
}

// TestFIFOSurvivesNATSRestart: NATS restarted mid-sequence, with heads
// held and later deliveries waiting on both gateways: the sequences go on
// in order afterwards.
func TestFIFOSurvivesNATSRestart(t *testing.T) {
	s := natstest.Start(t)
	opts := Options{AckWait: 2 * time.Second}
	a := openEngine(t, []string{s.URL()}, opts)
	b := openEngine(t, []string{s.URL()}, opts)
	for n := 1; n <= 6; n++ {
		enqueueAll(t, a, ordered("A", n), ordered("B", n))
	}
	sink := newSink(nil)
	gateways(t, sink, 4, 2, 3, 10*time.Millisecond, a, b)
	// Heads held and others waiting, then NATS goes away and comes back,
	// and the heads are sent and acked.
	held := map[*Engine][]queue.Leased{}
	deadline := time.Now().Add(engineWait)
	for len(held[a])+len(held[b]) == 0 {
		for _, e := range []*Engine{a, b} {
			got, err := e.Claim(nil, "crm", time.Now(), 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			held[e] = append(held[e], got...)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no head to hold after %s", engineWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.waitingFor("crm")+b.waitingFor("crm") == 0 {
		t.Fatalf("%d heads held and none waiting at the restart", len(held[a])+len(held[b]))
	}
	s.Restart()
	deadline = time.Now().Add(engineWait)
	for a.Health() != nil || b.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected after %s: %v, %v", engineWait, a.Health(), b.Health())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for e, ls := range held {
		for i := range ls {
			sink.send(0, &ls[i])
			if err := e.Ack(ls[i].Ref); err != nil {
				t.Fatalf("ack of %s held across the restart: %v", ls[i].Delivery.ID, err)
			}
		}
	}
	gateways(t, sink, 12, 2, 3, 10*time.Millisecond, a, b)
	sink.check(t, nil)
}

// TestFIFOStatsCountOrdered: ordered deliveries are on their keys'
// subjects; the target's depth and oldest age count them.
func TestFIFOStatsCountOrdered(t *testing.T) {
	s := natstest.Start(t)
	e := openEngine(t, []string{s.URL()}, Options{})
	enqueueAll(t, e, ordered("A", 1), ordered("B", 1), ordered("A", 2), dlv("plain-1", "crm", "r", "{}"))
	st := e.Stats()["crm"]
	if st.Depth != 4 || st.OldestAge <= 0 {
		t.Fatalf("stats of crm: depth %d, oldest %s; want 4 and above 0", st.Depth, st.OldestAge)
	}
}

// TestFIFOOldStreamUpgraded: a stream made by a hookgate before ordered
// delivery (subjects S.q.*, a consumer filtering S.q.<target>) is updated
// in place at Open: its delivery is still delivered, and ordered ones
// are taken.
func TestFIFOOldStreamUpgraded(t *testing.T) {
	s := natstest.Start(t)
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "hookgate", Subjects: []string{"hookgate.q.*"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, Duplicates: time.Minute, AllowAtomicPublish: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "t_crm", FilterSubject: "hookgate.q.crm", AckPolicy: jetstream.AckExplicitPolicy,
		MaxDeliver: -1, MaxAckPending: -1,
	}); err != nil {
		t.Fatal(err)
	}
	old := dlv("old-1", "crm", "r", "{}")
	m := nats.NewMsg("hookgate.q.crm")
	m.Data = queue.AppendRecord(nil, &old)
	m.Header.Set(hEnqueued, strconv.FormatInt(time.Now().UnixNano(), 10))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	e := openEngine(t, []string{s.URL()}, Options{})
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(info.Config.Subjects, " "); got != "hookgate.q.>" {
		t.Fatalf("stream subjects %q after Open, want hookgate.q.>", got)
	}
	enqueueAll(t, e, ordered("A", 1))
	var got []string
	deadline := time.Now().Add(engineWait)
	for len(got) < 2 && time.Now().Before(deadline) {
		ls, err := e.Claim(nil, "crm", time.Now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ls {
			got = append(got, string(ls[i].Delivery.ID))
			if err := e.Ack(ls[i].Ref); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Join(got, " ") != "old-1 A-1" {
		t.Fatalf("delivered %v, want old-1 A-1", got)
	}
}

// TestParkDelay: a non-head that cannot wait on the gateway goes back
// for parkMin, doubling with each return, at most parkMax.
func TestParkDelay(t *testing.T) {
	for _, tt := range []struct {
		delivered uint64
		want      time.Duration
	}{{0, parkMin}, {1, parkMin}, {2, 2 * parkMin}, {3, 4 * parkMin}, {6, parkMax}, {1000, parkMax}} {
		if got := parkDelay(tt.delivered); got != tt.want {
			t.Errorf("parkDelay(%d) = %s, want %s", tt.delivered, got, tt.want)
		}
	}
}

// TestFIFOIdleGatewayGivesBackWaiting: a gateway holding later deliveries
// of a key that stops claiming the target (its lane stopped) gives them
// back after an AckWait, and the other gateway delivers them in order.
func TestFIFOIdleGatewayGivesBackWaiting(t *testing.T) {
	s := natstest.Start(t)
	opts := Options{AckWait: time.Second}
	a := openEngine(t, []string{s.URL()}, opts)
	b := openEngine(t, []string{s.URL()}, opts)
	enqueueAll(t, a, ordered("A", 1), ordered("A", 2), ordered("A", 3))
	got := claimWait(t, a, "crm", 10, time.Minute)
	if ids(got) != "A-1 " || a.waitingFor("crm") != 2 {
		t.Fatalf("claimed %s with %d waiting, want A-1 with A-2, A-3 waiting", ids(got), a.waitingFor("crm"))
	}
	if err := a.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	// a claims no more.
	var order []string
	deadline := time.Now().Add(engineWait)
	for len(order) < 2 {
		ls, err := b.Claim(nil, "crm", time.Now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ls {
			order = append(order, string(ls[i].Delivery.ID))
			if err := b.Ack(ls[i].Ref); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claiming gateway delivered %v in %s; the idle one still holds %d", order, engineWait, a.waitingFor("crm"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Join(order, " "); got != "A-2 A-3" {
		t.Fatalf("delivered %s, want A-2 A-3", got)
	}
}

// TestFIFOLongBacklogBounded: a key with a backlog longer than a gateway
// holds (waitPerKey), its head failing until the other key is delivered:
// each gateway holds at most waitPerKey of it, the rest go back to the
// stream for a while, the other key, behind the whole backlog in the
// stream, still flows, and everything arrives in order.
func TestFIFOLongBacklogBounded(t *testing.T) {
	was := waitPerKey
	waitPerKey = 100
	t.Cleanup(func() { waitPerKey = was }) // after the engines closed
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	long := 2*waitPerKey + 60 // more than two gateways hold: some go back to the stream
	ds := make([]delivery.Delivery, 0, long+3)
	for n := 1; n <= long; n++ {
		ds = append(ds, ordered("A", n))
	}
	ds = append(ds, ordered("B", 1), ordered("B", 2), ordered("B", 3))
	for i := 0; i < len(ds); i += 50 { // one event of several deliveries: stored in this order
		if err := a.Enqueue(ds[i:min(i+50, len(ds))]); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	most := 0
	sink := newSink(func(x sent, log []sent) bool {
		mu.Lock()
		_, ma := a.waiting("crm")
		_, mb := b.waiting("crm")
		most = max(most, ma, mb)
		mu.Unlock()
		if x.key != "A" {
			return false
		}
		bDone := 0
		for _, y := range log {
			if y.key == "B" && y.ok {
				bDone++
			}
		}
		return bDone < 3
	})
	gateways(t, sink, long+3, 2, 4, 20*time.Millisecond, a, b)
	sink.check(t, nil)
	mu.Lock()
	defer mu.Unlock()
	if most > waitPerKey {
		t.Fatalf("a gateway held %d deliveries of one key waiting, more than waitPerKey (%d)", most, waitPerKey)
	}
	if most < waitPerKey/2 {
		t.Fatalf("at most %d waited on a gateway: the backlog was not held as expected", most)
	}
}

// TestFIFOClusterR3: on a 3-node cluster with R3 streams, where the stream
// removes an acked message a moment after the ack, two gateways deliver
// two keys in order without waiting out an AckWait per delivery (20 of
// them would take longer than the failure timeout), and keep the order
// while a node is restarted (claims and acks failing meanwhile are
// retried, as lanes do; a lost ack sends a delivery again).
func TestFIFOClusterR3(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster: not in -short")
	}
	c := natstest.Cluster(t, 3)
	opts := Options{AckWait: 5 * time.Second}
	a := openStream(t, c.URLs(), "hookgate", 3, opts)
	b := openStream(t, c.URLs(), "hookgate", 3, opts)
	waitStreamLeader(t, a.js, a.n.work, 3) // enqueueAll fails on a 503
	for n := 1; n <= 15; n++ {
		enqueueAll(t, a, ordered("A", n), ordered("B", n))
	}
	sink := newSink(nil)
	errs := deliver(t, sink, 10, 2, 3, 10*time.Millisecond, a, b)
	c.Node(2).Restart()
	errs = append(errs, deliver(t, sink, 30, 2, 3, 10*time.Millisecond, a, b)...)
	sink.check(t, nil)
	t.Logf("%d errors (a new consumer's leader, the node restarting), retried", len(errs))
}

// TestFIFOEndedHeadNotYetRemoved: in a cluster the stream removes an acked
// message a moment after the ack, so a gateway told that a head ended may
// still find it stored. The word carries the head's sequence, and the
// waiting next delivery goes at once rather than after the next sweep
// (an AckWait). Simulated on one node: the word for A-1 is delivered while
// A-1 is still stored.
func TestFIFOEndedHeadNotYetRemoved(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	enqueueAll(t, a, ordered("A", 1), ordered("A", 2))
	head := claimWait(t, a, "crm", 1, time.Minute)
	claimNone(t, b, "crm") // A-2 waits on b
	if b.waitingFor("crm") != 1 {
		t.Fatalf("%d waiting on b, want A-2", b.waitingFor("crm"))
	}
	// a's word, as if A-1 had been acked and the stream not yet removed it.
	word := nats.NewMsg(a.n.wordSubject(a.n.subjectOf(&[]delivery.Delivery{ordered("A", 1)}[0])))
	word.Data = []byte("another-gateway " + strconv.FormatUint(uint64(head[0].Ref), 10))
	b.heard(word)
	got, err := b.Claim(nil, "crm", time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != "A-2 " {
		t.Fatalf("after the word that A-1 ended, b claimed %q, want A-2", ids(got))
	}
}
