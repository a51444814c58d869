package dispatch

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/sink"
)

// oneEvent is event n's deliveries, one to each of targets in turn.
func oneEvent(n int, targets ...string) []delivery.Delivery {
	ds := make([]delivery.Delivery, len(targets))
	for i, tg := range targets {
		id := fmt.Sprintf("evt_%d", n)
		ds[i] = delivery.Delivery{ID: fmt.Appendf(nil, "%s.%d", id, i), EventID: []byte(id), Route: "r", Target: tg,
			Method: []byte("POST"), Body: []byte(`{"n":1}`)}
	}
	return ds
}

// TestEnqueueYieldsToBacklog: on one P, an Enqueue for a target whose
// unclaimed backlog is over two rounds of its workers first yields the P,
// until the backlog is down to that, 16 times at most, and stops after two
// yields in a row that moved nothing (the first of them followed by a
// wait, since the target answers quickly here); it never yields for a
// backlog within bounds, for another target's backlog, or with two Ps.
// Yielding never holds an event back: every Enqueue stores its
// deliveries.
func TestEnqueueYieldsToBacklog(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := startSink(t, sink.Options{})
	crm, sms := targetFor("crm", s), targetFor("sms", s) // 2 workers each: the limit is 4
	d, st := unstarted(t, crm, sms)
	l := d.cur.Load().lanes["crm"]
	quick(l) // as if it had answered quickly

	// What each yield lets the lane do: nothing, claim one (its worker
	// took it), or claim and ack one (an attempt ended).
	var yields int
	var leased []queue.Leased
	do := "nothing"
	d.yield = func() {
		yields++
		if do == "nothing" {
			return
		}
		var err error
		leased, err = st.Claim(leased[:0], "crm", time.Now(), 1, time.Minute)
		if err != nil || len(leased) != 1 {
			t.Fatalf("claim in yield: %v, %v", leased, err)
		}
		if do == "attempt" {
			l.attempts.Add(1)
			if err := st.Ack(leased[0].Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	waits := 0
	d.wait = func(time.Duration) { waits++ }
	n := 0
	enqueue := func(targets ...string) int {
		t.Helper()
		yields, waits = 0, 0
		n++
		if err := d.Enqueue(oneEvent(n, targets...)); err != nil {
			t.Fatal(err)
		}
		return yields
	}
	ready := func(target string, want int) {
		t.Helper()
		if got := st.Ready(target); got != want {
			t.Fatalf("Ready(%s) = %d, want %d", target, got, want)
		}
	}

	for i := range 5 { // a backlog of 0 to 4 before each: within bounds
		if y := enqueue("crm"); y != 0 {
			t.Fatalf("Enqueue %d with a backlog of %d yielded %d times, want 0", i+1, i, y)
		}
	}
	ready("crm", 5)
	for i := range 3 { // over the limit, and the lane moves nothing: 2 yields
		if y := enqueue("crm"); y != 2 {
			t.Fatalf("Enqueue over the limit with nothing moving yielded %d times, want 2", y)
		}
		// The target answers quickly: the first yield is followed by a
		// wait, and the yield after it stops it.
		if waits != 1 {
			t.Fatalf("Enqueue %d over the limit with nothing moving waited %d times, want 1", i+1, waits)
		}
		ready("crm", 6+i)
	}

	do = "claim" // 8 waiting: each yield claims one, 4 to go under the limit
	if y := enqueue("crm"); y != 4 {
		t.Fatalf("Enqueue with 8 waiting, a claim each yield, yielded %d times, want 4", y)
	}
	ready("crm", 5)
	for range 20 {
		do = "nothing"
		enqueue("crm")
	}
	do = "attempt" // 25 waiting: each yield ends an attempt; at most 16
	if y := enqueue("crm"); y != maxYields {
		t.Fatalf("Enqueue with 25 waiting, an attempt each yield, yielded %d times, want %d", y, maxYields)
	}
	ready("crm", 25-maxYields+1)

	do = "nothing"
	if y := enqueue("sms"); y != 0 {
		t.Fatalf("Enqueue for sms yielded %d times for crm's backlog, want 0", y)
	}
	if y := enqueue("sms", "crm", "crm"); y != 2 {
		t.Fatalf("an event for sms and crm (twice) yielded %d times, want 2 (crm looked at once)", y)
	}
	runtime.GOMAXPROCS(2)
	if y := enqueue("crm"); y != 0 {
		t.Fatalf("Enqueue on two Ps yielded %d times, want 0", y)
	}
	runtime.GOMAXPROCS(1)
	ready("crm", 25-maxYields+1+3)
	ready("sms", 2)
}

// TestEnqueueWaitsOnceForTheTarget: while the target answers quickly,
// the first yield of an Enqueue that frees nothing is followed by one
// wait, never more: a wait that lets an attempt end keeps the yields
// going, one that frees nothing stops them. A target with no attempt yet,
// whose latest attempt was slow or failed, or with no attempt ended for
// quickAttempt, gets no waits, only the yields.
func TestEnqueueWaitsOnceForTheTarget(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	crm := targetFor("crm", startSink(t, sink.Options{})) // 2 workers: the limit is 4
	d, st := unstarted(t, crm)
	l := d.cur.Load().lanes["crm"]
	d.yield, d.wait = func() {}, func(time.Duration) {}
	for i := range 8 {
		if err := d.Enqueue(oneEvent(i, "crm")); err != nil {
			t.Fatal(err)
		}
	}
	var yields, waits int
	answer := true // what a wait does: an attempt ends, or nothing
	d.yield = func() { yields++ }
	d.wait = func(time.Duration) {
		waits++
		if !answer {
			return
		}
		leased, err := st.Claim(nil, "crm", time.Now(), 1, time.Minute)
		if err != nil || len(leased) != 1 {
			t.Fatalf("claim in wait: %v, %v", leased, err)
		}
		l.attempts.Add(1)
		if err := st.Ack(leased[0].Ref); err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(wantYields, wantWaits int) {
		t.Helper()
		yields, waits = 0, 0
		before := st.Ready("crm")
		if err := d.Enqueue(oneEvent(100+before, "crm")); err != nil {
			t.Fatal(err)
		}
		if yields != wantYields || waits != wantWaits {
			t.Fatalf("Enqueue with a backlog of %d, quick until %d (now %d): %d yields and %d waits, want %d and %d",
				before, l.quickUntil.Load(), waitClock(time.Now()), yields, waits, wantYields, wantWaits)
		}
	}

	enqueue(2, 0) // no attempt yet: not known to answer quickly
	quick(l)
	// A yield frees nothing, the wait ends an attempt, the yield after it
	// shows that, and two more that free nothing stop it.
	enqueue(4, 1)
	enqueue(4, 1)
	answer = false // the wait frees nothing: the yield after it stops
	enqueue(2, 1)

	answer = true
	l.quickUntil.Store(0) // the latest attempt failed or was slow: yields alone, as before waits
	enqueue(2, 0)
	l.quickUntil.Store(waitClock(time.Now())) // quick, but no attempt has ended since: a target gone quiet
	enqueue(2, 0)
	quick(l)
	enqueue(4, 1)
	if got := st.Ready("crm"); got != 8+7-3 {
		t.Fatalf("Ready = %d after 7 Enqueues and 3 attempts, want %d", got, 8+7-3)
	}
}

// TestNoWaitWhenEachCommitSyncs: with sync "always" an Enqueue returns
// only once its fsync is done, shared with the Enqueues that reached the
// store with it; a wait before the store would take it out of that group
// commit (async 0.80x the rate at 1.21x the CPU per event side by side,
// benchmarks/HISTORY.md, thirty-seventh run). An Enqueue behind a quick
// target's backlog then yields as before and never waits; on a batch
// store, the same Enqueue waits once.
func TestNoWaitWhenEachCommitSyncs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, tc := range []struct {
		sync       string
		yields     int
		waits      int
		syncsEvery bool
	}{
		{queue.SyncAlways, 2, 0, true},
		{queue.SyncBatch, 2, 1, false},
	} {
		crm := targetFor("crm", startSink(t, sink.Options{})) // 2 workers: the limit is 4
		d, st := unstartedSync(t, tc.sync, crm)
		if got := st.SyncsEachCommit(); got != tc.syncsEvery {
			t.Fatalf("sync %q: SyncsEachCommit = %v, want %v", tc.sync, got, tc.syncsEvery)
		}
		l := d.cur.Load().lanes["crm"]
		d.yield, d.wait = func() {}, func(time.Duration) {}
		for i := range 8 {
			if err := d.Enqueue(oneEvent(i, "crm")); err != nil {
				t.Fatal(err)
			}
		}
		quick(l)
		var yields, waits int
		d.yield, d.wait = func() { yields++ }, func(time.Duration) { waits++ }
		if err := d.Enqueue(oneEvent(8, "crm")); err != nil {
			t.Fatal(err)
		}
		if yields != tc.yields || waits != tc.waits {
			t.Fatalf("sync %q, 8 waiting, nothing moving: %d yields and %d waits, want %d and %d", tc.sync, yields, waits, tc.yields, tc.waits)
		}
		if got := st.Ready("crm"); got != 9 {
			t.Fatalf("sync %q: Ready = %d after 9 Enqueues, want 9", tc.sync, got)
		}
	}
}

// TestEnqueueWaitsWhileFarBehind: behind a backlog over farRounds rounds
// of a quick target's workers, an Enqueue on a batch store waits on after
// its yields, in naps that double from backlogWait, until the backlog is
// down to backlogRounds rounds or the naps add up to maxFarWait; once per
// Enqueue, however many of its targets are that far behind. With sync
// "always", or a target that has not answered quickly, it never waits.
func TestEnqueueWaitsWhileFarBehind(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const us = time.Microsecond
	full := []time.Duration{200 * us, 200 * us, 400 * us, 800 * us, 1600 * us, 3200 * us, 6400 * us, 12400 * us}
	for _, tc := range []struct {
		name    string
		sync    string
		quick   bool
		perNap  int      // deliveries a nap lets the workers claim
		targets []string // the Enqueue's deliveries
		naps    []time.Duration
	}{
		{"nothing moves", queue.SyncBatch, true, 0, []string{"crm"}, full},
		{"three claimed a nap", queue.SyncBatch, true, 3, []string{"crm"}, full[:6]},
		{"two targets far behind", queue.SyncBatch, true, 0, []string{"crm", "sms"}, full},
		{"sync always", queue.SyncAlways, true, 0, []string{"crm"}, nil},
		{"target not quick", queue.SyncBatch, false, 0, []string{"crm"}, nil},
	} {
		s := startSink(t, sink.Options{})
		crm, sms := targetFor("crm", s), targetFor("sms", s) // 2 workers each: limit 4, far behind over 12
		d, st := unstartedSync(t, tc.sync, crm, sms)
		g := d.cur.Load()
		d.yield, d.wait = func() {}, func(time.Duration) {}
		for i := range 20 {
			if err := d.Enqueue(oneEvent(i, "crm", "sms")); err != nil {
				t.Fatal(err)
			}
		}
		if tc.quick {
			quick(g.lanes["crm"])
			quick(g.lanes["sms"])
		}
		var naps []time.Duration
		d.wait = func(nap time.Duration) {
			naps = append(naps, nap)
			if tc.perNap == 0 {
				return
			}
			if leased, err := st.Claim(nil, "crm", time.Now(), tc.perNap, time.Minute); err != nil || len(leased) != tc.perNap {
				t.Fatalf("%s: claim in a nap: %d, %v", tc.name, len(leased), err)
			}
		}
		if err := d.Enqueue(oneEvent(20, tc.targets...)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(naps) != fmt.Sprint(tc.naps) {
			t.Fatalf("%s: naps %v, want %v", tc.name, naps, tc.naps)
		}
		var far time.Duration
		for _, nap := range naps[min(1, len(naps)):] {
			far += nap
		}
		if len(naps) == len(full) && far != maxFarWait {
			t.Fatalf("%s: the naps after the first add up to %v, want %v", tc.name, far, maxFarWait)
		}
		if tc.perNap > 0 {
			// 20 - 3 (the yields' wait) - 5*3 = 2: within two rounds, so the naps stopped.
			if got := st.Ready("crm"); got != 2+1 {
				t.Fatalf("%s: Ready = %d after the naps and the Enqueue, want 3", tc.name, got)
			}
		}
	}
}

// quick marks l as answering quickly for the rest of the test.
func quick(l *lane) { l.quickUntil.Store(waitClock(time.Now()) + int64(time.Hour)) }

// TestAttemptsSayHowQuicklyTheTargetAnswers: an attempt that succeeds
// within quickAttempt makes its lane count as answering quickly for
// quickAttempt after it ends; one that fails or takes longer ends that at
// once. It is what an Enqueue looks at before it waits for a backlog.
func TestAttemptsSayHowQuicklyTheTargetAnswers(t *testing.T) {
	ok := targetFor("ok", startSink(t, sink.Options{}))
	slow := targetFor("slow", startSink(t, sink.Options{Delay: quickAttempt + 10*time.Millisecond}))
	down := targetFor("down", startSink(t, sink.Options{Status: 503}))
	r := start(t, "", ok, slow, down)
	lanes := r.d.cur.Load().lanes
	for _, l := range lanes {
		l.quickUntil.Store(math.MaxInt64) // as if each had answered quickly before
	}
	before := waitClock(time.Now())
	r.enqueue(oneEvent(1, "ok", "slow", "down")...)
	until := func(name string) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for lanes[name].attempts.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no attempt to %s in 10 s", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return lanes[name].quickUntil.Load()
	}
	// How quick a 200 is depends on the machine: only that it counts
	// from when it ended, up to quickAttempt later.
	if v, after := until("ok"), waitClock(time.Now()); v == math.MaxInt64 || (v != 0 && (v < before+int64(quickAttempt) || v > after+int64(quickAttempt))) {
		t.Errorf("quickUntil after a 200 = %d, want 0 (a slow machine) or within quickAttempt of its end (%d..%d)", v, before+int64(quickAttempt), after+int64(quickAttempt))
	}
	if v := until("slow"); v != 0 {
		t.Errorf("quickUntil after an answer %v late = %d, want 0", quickAttempt+10*time.Millisecond, v)
	}
	if v := until("down"); v != 0 {
		t.Errorf("quickUntil after a 503 = %d, want 0", v)
	}
}

// TestNoWaitWhenWaitingCannotHelp: a rate-limited lane, or a backlog
// whose deliveries all wait out a retry's backoff, gets the yields
// alone; one wait serves a whole Enqueue, however many of its targets
// are behind.
func TestNoWaitWhenWaitingCannotHelp(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := startSink(t, sink.Options{})
	crm, sms, limited := targetFor("crm", s), targetFor("sms", s), targetFor("limited", s)
	limited.RateLimit, limited.Burst = 10, 1
	d, st := unstarted(t, crm, sms, limited)
	g := d.cur.Load()
	d.yield, d.wait = func() {}, func(time.Duration) {}
	for i := range 5 {
		if err := d.Enqueue(oneEvent(i, "crm", "sms", "limited")); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range g.lanes {
		quick(l)
	}
	var waits int
	d.wait = func(time.Duration) { waits++ }
	enqueue := func(want int, targets ...string) {
		t.Helper()
		waits = 0
		if err := d.Enqueue(oneEvent(100+st.Ready("crm")+st.Ready("limited"), targets...)); err != nil {
			t.Fatal(err)
		}
		if waits != want {
			t.Fatalf("Enqueue for %v waited %d times, want %d", targets, waits, want)
		}
	}
	enqueue(0, "limited")
	enqueue(1, "crm", "sms") // both behind: one wait for the two
	enqueue(1, "sms", "crm", "sms")

	// crm's whole backlog waits out a backoff: nothing to deliver yet.
	leased, err := st.Claim(nil, "crm", time.Now(), 100, time.Minute)
	if err != nil || len(leased) != st.Ready("crm")+len(leased) {
		t.Fatalf("claim: %d, %v", len(leased), err)
	}
	for _, ld := range leased {
		if err := st.Retry(ld.Ref, time.Now().Add(time.Hour), delivery.Attempt{At: time.Now(), Status: 503}); err != nil {
			t.Fatal(err)
		}
	}
	if st.Ready("crm") <= backlogRounds*g.lanes["crm"].workers {
		t.Fatalf("crm's backlog %d is not over the limit", st.Ready("crm"))
	}
	enqueue(0, "crm")
}

// TestYieldToBacklogAllocatesNothing: the look at the backlog and the
// yields that follow allocate nothing, so the async hot path stays
// allocation-free while a backlog drains.
func TestYieldToBacklogAllocatesNothing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	crm := targetFor("crm", startSink(t, sink.Options{}))
	d, st := unstarted(t, crm)
	for i := range 10 {
		if err := d.Enqueue(oneEvent(i, "crm")); err != nil {
			t.Fatal(err)
		}
	}
	yields, waits := 0, 0
	d.yield = func() { yields++; runtime.Gosched() }
	d.wait = func(nap time.Duration) { waits++; time.Sleep(nap) }
	g, ds := d.cur.Load(), oneEvent(99, "crm")
	quick(g.lanes["crm"]) // the wait too
	if n := testing.AllocsPerRun(100, func() { d.yieldToBacklog(g, ds) }); n > 0 {
		t.Fatalf("yieldToBacklog allocates %.2f times", n)
	}
	if yields == 0 || waits != 101 || st.Ready("crm") != 10 {
		t.Fatalf("%d yields and %d waits in 101 calls with a backlog of %d: the test measured the wrong path", yields, waits, st.Ready("crm"))
	}

	// Far behind (over 12 with 2 workers): the naps after the yields.
	// Counted, not slept, or 101 calls would take 2.5 s.
	for i := range 10 {
		if err := d.Enqueue(oneEvent(10+i, "crm")); err != nil {
			t.Fatal(err)
		}
	}
	waits = 0
	d.wait = func(time.Duration) { waits++ }
	if n := testing.AllocsPerRun(100, func() { d.yieldToBacklog(g, ds) }); n > 0 {
		t.Fatalf("yieldToBacklog far behind allocates %.2f times", n)
	}
	if waits != 101*8 || st.Ready("crm") != 20 {
		t.Fatalf("%d waits in 101 calls with a backlog of %d, want 8 a call: the test measured the wrong path", waits, st.Ready("crm"))
	}
}
