package dispatch

import (
	"runtime"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// On one P, ingest and delivery share the core, and Go's scheduler gives
// every runnable goroutine its turn: a busy sender's connections take in
// events about as fast as the lanes' workers send them, so whatever
// backlog a burst or a stall (a log rotation's sync, a compaction) left
// behind stays. It is not free while it stays. Its claims miss the ring
// of recent records (gateway/queue, recent.go: about 1,000 of 2 KB) and
// read each record back from Pebble, and its records outlive the memtable
// they were written to, so flushes write them to sstables and compactions
// read them back, where an ack within the same memtable would have
// cancelled both. Measured with the load harness (`sync = "batch"`,
// benchmarks/HISTORY.md, thirty-second run), the backlog stayed at
// 1,000-6,000 deliveries, 0.1-0.3 s behind; in a round where it did,
// claims took 8.6% of the gateway's CPU and compactions 9.3%, against
// 1.2% and 2.2% with it held down.
//
// So while a target's backlog is over backlogRounds rounds of its workers,
// an Enqueue for it first yields the P, up to maxYields times, to the
// goroutines waiting for it. Side by side, the async scenario then ran
// 1.06-1.14x faster at 0.83-0.87x the CPU per event (paired medians of
// three runs), with the backlog at a few hundred. The yields stop after
// two in a row that ended no attempt of that lane and took nothing from
// its backlog: its workers then wait for the target (slow, down,
// rate-limited, its breaker open), not for this core, and yielding on
// would only slow ingest. With a target that answers after 50 ms, ingest
// ran as fast as without yields; yielding 16 times regardless cost it 6%.
// With more Ps, deliveries run alongside ingest, and Enqueue never yields.
//
// Yields alone did not keep up with the product's 64 workers per target:
// with `sync = "batch"` the harness's deliveries fell behind ingest by a
// sixth, and the backlog grew for as long as the load lasted (a 2 s
// drain after 8 s rounds; benchmarks/HISTORY.md, thirty-fourth and
// thirty-sixth runs). The goroutines that take in events get as much of
// the core as the workers that deliver them, and a yield returns to them
// as soon as the workers have nothing to run. So when waiting can help,
// the first yield of an Enqueue that frees nothing is followed by a wait
// of backlogWait, once per Enqueue however many of its targets are
// behind: the sender's answer comes that much later, and meanwhile the
// core goes to deliveries (and to the target, when it shares the core).
// Waiting can help while the target answers quickly (its latest attempt
// succeeded within quickAttempt and ended less than quickAttempt ago),
// no rate limit holds the lane back, and a delivery of the backlog is
// due. A slow, failing, hung or rate-limited target, or a backlog of
// retries waiting out their backoff, is not helped by a faster core and
// costs ingest no waits, as before. Side by side with 64 workers, the
// backlog then held (drains of about 0.1 s, against 2 s), 1.3x as many
// events were delivered a second, at less CPU per event, and the 202's
// p99 fell from 27-31 to 8 ms; 64 workers now deliver more than 128
// (1.18x).
//
// Only with sync "batch". With "always" an Enqueue returns once its
// fsync is done, shared with the Enqueues that reached the store with
// it, so ingest already waits for the disk, and a wait before the store
// most likely takes the Enqueue out of the group commit it was about to
// join (more fsyncs per event): with
// waits, the harness's async scenario ran at 0.80x the rate at 1.21x the
// CPU per event of the build before them (every round 0.78-0.90x), and
// without them at 1.00x and 0.99x (benchmarks/HISTORY.md, thirty-seventh
// run). The yields stay: they measured neutral with "always" (thirty-
// second run).
//
// Far behind, an Enqueue waits until the backlog is back. One wait per
// Enqueue does not hold a backlog down in a slow spell of the host (the
// harness's machine is shared): ingest, slowed by one wait per event,
// goes on taking events in about as fast as the slowed deliveries send
// them, and a backlog that grows past the ring of recent records
// (gateway/queue, recent.go: about 1,000 records of 2 KB) makes every
// claim read its records back from Pebble, which slows the deliveries
// further, so the backlog stays: counted in the harness
// (benchmarks/README.md, thirty-eighth run), a round either missed the
// ring for none of its claims or for 13-53% of them, and the rounds that
// missed ran at 16-21k events a second against 25-28k. Waiting longer
// when far behind only while a wait freed something (16 waits at most,
// 3.2 ms) did not hold the backlog down (thirty-seventh run). So while a
// lane's backlog is over farRounds rounds of its workers (384 deliveries
// for 64 workers, about 0.8 MB of 2 KB records, within the ring) and
// waiting can help (mayWait), an Enqueue waits on, in naps that double
// from backlogWait, until the backlog is down to backlogRounds rounds,
// waiting stops helping, or maxFarWait has passed: at most maxFarWait per
// Enqueue, however many of its targets are that far behind. Side by side
// with the build before, in five runs of 8-10 rounds: no round of a throwaway
// build of the same logic missed the ring (the build before: 5 of 15
// counted), the slowest drain after a round was 0.14 s or less in all 42
// rounds (before: up to 0.63 s), async delivered 1.00-1.06x as many events
// a second (median 1.04x) at 0.95-1.00x the CPU per event, and the 202's
// p99.9 rose to 23-30 ms from 16-17 in three runs of four: the senders
// wait, instead of every event costing more.
const (
	backlogRounds = 2
	farRounds     = 6
	maxYields     = 16
	backlogWait   = 200 * time.Microsecond
	maxFarWait    = 25 * time.Millisecond
	quickAttempt  = 20 * time.Millisecond
)

// waitClock is t on a monotonic clock, in nanoseconds since waitEpoch,
// for lane.quickUntil.
func waitClock(t time.Time) int64 { return int64(t.Sub(waitEpoch)) }

var waitEpoch = time.Now()

// readyCounter is an engine that counts each target's unclaimed
// deliveries in memory: the embedded store. NATS keeps its backlog on the
// server; a gateway on it never yields.
type readyCounter interface {
	Ready(target string) int
	NextDue(target string) (time.Time, bool)
	SyncsEachCommit() bool
}

// yieldToBacklog yields the P while the backlog of a lane that ds goes to
// is over backlogRounds rounds of its workers and the yields free its
// attempts (see above). Each lane is looked at once per run of ds going to
// it; an event fans out to a few targets, so a repeat costs one lookup.
func (d *Dispatcher) yieldToBacklog(g *Lanes, ds []delivery.Delivery) {
	if d.ready == nil {
		return
	}
	var prev *lane
	waited := false    // one wait per Enqueue: it gives the core to every lane's workers
	farWaited := false // and one wait for a lane far behind, for the same reason
	for i := range ds {
		l := g.lanes[ds[i].Target]
		if l == nil || l == prev {
			continue
		}
		prev = l
		// GOMAXPROCS takes the scheduler's lock: asked only with a backlog.
		if d.ready.Ready(l.name) > backlogRounds*l.workers && runtime.GOMAXPROCS(0) == 1 {
			l.yieldWhileBehind(d.ready, d.yield, d.wait, &waited)
			if !farWaited && d.ready.Ready(l.name) > farRounds*l.workers && l.mayWait(d.ready) {
				farWaited = true
				l.waitWhileFarBehind(d.ready, d.wait)
			}
		}
	}
}

// yieldWhileBehind calls yield until l's backlog is down to backlogRounds
// rounds of its workers, maxYields times at most, and stops after two
// yields in a row that free nothing (no attempt of l ended and its
// backlog did not shrink: a claim takes from it before the attempt ends).
// While l's target answers quickly and a delivery of its backlog is due,
// the first yield that frees nothing is followed by a wait instead, unless
// *waited says this Enqueue waited already; a yield after the wait that
// shows nothing freed since stops it.
func (l *lane) yieldWhileBehind(rc readyCounter, yield func(), wait func(time.Duration), waited *bool) {
	limit := backlogRounds * l.workers
	ready, done := rc.Ready(l.name), l.attempts.Load()
	idle, afterWait := 0, false
	for range maxYields {
		yield()
		now, ended := rc.Ready(l.name), l.attempts.Load()
		if now <= limit {
			return
		}
		if ended != done || now < ready {
			idle, ready, done, afterWait = 0, now, ended, false
			continue
		}
		ready = now
		if afterWait {
			return // neither the wait nor the yield after it freed anything
		}
		if !*waited && l.mayWait(rc) {
			*waited, afterWait = true, true
			wait(backlogWait)
			continue
		}
		if idle++; idle == 2 {
			return
		}
	}
}

// waitWhileFarBehind waits, in naps that double from backlogWait, until
// l's backlog is down to backlogRounds rounds of its workers, waiting can
// no longer help (mayWait), or the naps add up to maxFarWait.
func (l *lane) waitWhileFarBehind(rc readyCounter, wait func(time.Duration)) {
	limit := backlogRounds * l.workers
	nap, slept := backlogWait, time.Duration(0)
	for slept < maxFarWait {
		nap = min(nap, maxFarWait-slept)
		wait(nap)
		slept += nap
		nap *= 2
		if rc.Ready(l.name) <= limit || !l.mayWait(rc) {
			return
		}
	}
}

// mayWait says whether waiting for the deliveries can help: the store
// does not fsync every commit (with sync "always" ingest waits for the
// disk already, see above), the target answered quickly of late
// (lane.quickUntil), no rate limit holds the lane back, and a delivery of
// its backlog is due (not all waiting out a retry's backoff).
func (l *lane) mayWait(rc readyCounter) bool {
	if l.limiter != nil || rc.SyncsEachCommit() {
		return false
	}
	now := time.Now()
	if waitClock(now) >= l.quickUntil.Load() {
		return false
	}
	due, ok := rc.NextDue(l.name)
	return ok && !due.After(now)
}
