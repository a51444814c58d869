package dispatch

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

// The three review fixes of 65863c4, each pinned by a test that fails
// without it. The races they close are hard to hit through a live lane on
// demand, so these tests make the interleaving happen by calling the lane
// in the order the race would, on a real store and real target clients.

// unstarted is a dispatcher on a real store whose lanes and operations
// goroutine never run: what it queues stays in the store for the test to
// count, and nothing takes it away.
func unstarted(t *testing.T, cfgs ...config.Target) (*Dispatcher, *queue.Store) {
	t.Helper()
	return unstartedSync(t, queue.SyncBatch, cfgs...)
}

// unstartedSync is unstarted on a store with the given sync policy.
func unstartedSync(t *testing.T, sync string, cfgs ...config.Target) (*Dispatcher, *queue.Store) {
	t.Helper()
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: sync})
	if err != nil {
		t.Fatal(err)
	}
	set, err := target.NewSet(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); set.Close() })
	return New(st, set, cfgs, Options{Poll: 50 * time.Millisecond}), st
}

// TestStopStoresEveryBufferedOperationalEvent: events still buffered when
// the dispatcher stops are all stored (they go out after the restart),
// not only the first batch of 64. Without the fix, stop stored one batch
// and 1,000 - 64 events were lost.
func TestStopStoresEveryBufferedOperationalEvent(t *testing.T) {
	ops := startSwitchable(t, 200)
	d, st := unstarted(t, ops.opsTarget())
	d.SetOperations(config.Operations{Target: "ops", Events: config.OperationEvents, HighWater: 0.8})
	const n = 1000 // within opsBuffer: none is dropped
	for range n {
		d.emit(config.EventQueueHighWater, "", highWaterData{Depth: 1})
	}
	if got := len(d.ops.ch); got != n {
		t.Fatalf("%d events buffered, want %d", got, n)
	}
	// The operations goroutine as Stop finds it: the stop signal already
	// there beside a full buffer.
	close(d.ops.stop)
	d.runOps()
	if got := st.Stats()["ops"].Depth; got != n {
		t.Fatalf("%d of %d buffered operational events stored at stop; the rest were lost", got, n)
	}
}

// TestNoRecoveredWhileDisabled: an attempt made before its target was
// disabled that succeeds after is no recovery: the target stays disabled
// until enabled, and nobody is told it recovered. Here the target was
// enabled once (so its next success is news), failed for disable_after
// again and was disabled again, and then an attempt already on its way
// succeeded.
func TestNoRecoveredWhileDisabled(t *testing.T) {
	crm, ops := startSwitchable(t, 200), startSwitchable(t, 200)
	c := crm.target("crm")
	c.DisableAfter = time.Hour
	d, _ := unstarted(t, c, ops.opsTarget())
	d.SetOperations(config.Operations{Target: "ops", Events: config.OperationEvents, HighWater: 0.8})
	l := d.cur.Load().lanes["crm"]

	// What send does with each attempt's result, in the order the race
	// would have them.
	attempt := func(failed bool, at time.Time) {
		changed := l.breaker.record(failed, at)
		l.watch(failed, changed, at, "status 503: will retry")
	}
	disabled := func(at time.Time) {
		t.Helper()
		attempt(true, at)
		attempt(true, at.Add(2*time.Hour))
		if l.breaker.State() != BreakerDisabled {
			t.Fatalf("breaker %q after two hours of failures, want disabled", l.breaker.State())
		}
		if got := drainEvents(d); len(got) != 1 || got[0] != config.EventTargetDisabled {
			t.Fatalf("operational events when disabled: %v, want [target.disabled]", got)
		}
	}
	t0 := time.Now()
	disabled(t0)
	if was, err := d.Enable("crm"); !was || err != nil {
		t.Fatalf("Enable: %v, %v", was, err)
	}
	disabled(t0.Add(3 * time.Hour))
	attempt(false, t0.Add(5*time.Hour+time.Second)) // sent before the second disable, it succeeds now
	if got := drainEvents(d); len(got) != 0 {
		t.Fatalf("a target still disabled announced %v", got)
	}
	if l.breaker.State() != BreakerDisabled {
		t.Fatalf("a late success changed the disabled target's breaker to %q", l.breaker.State())
	}
	// Enabled, its next success is the recovery.
	if was, err := d.Enable("crm"); !was || err != nil {
		t.Fatalf("Enable: %v, %v", was, err)
	}
	attempt(false, t0.Add(6*time.Hour))
	if got := drainEvents(d); len(got) != 1 || got[0] != config.EventTargetRecovered {
		t.Fatalf("operational events after enable and a success: %v, want [target.recovered]", got)
	}
}

// drainEvents takes the operational events buffered so far and returns
// their types.
func drainEvents(d *Dispatcher) []string {
	var out []string
	for len(d.ops.ch) > 0 {
		dl := <-d.ops.ch
		var ev opsEvent
		if err := json.Unmarshal(dl.Body, &ev); err != nil {
			panic(err)
		}
		out = append(out, ev.Type)
	}
	return out
}

// TestDisableRechecksItsClock: watch decides to disable outside the lock;
// a success may end the run of failures (and a new failure start a new
// one) before disable takes it. disable looks again, so the target is not
// disabled with no clock, or on a run of failures seconds old.
func TestDisableRechecksItsClock(t *testing.T) {
	crm := startSwitchable(t, 200)
	c := crm.target("crm")
	c.DisableAfter = time.Hour
	r := start(t, "", c)
	l := r.d.cur.Load().lanes["crm"]
	now := time.Now()

	// A success came in between: no clock.
	l.fail.since.Store(0)
	if l.disable(now, "status 503: will retry") || l.breaker.disabled() {
		t.Fatal("disabled with no failure clock: a success had ended the run of failures")
	}
	// ... and a new failure started a new run one second ago.
	l.fail.since.Store(now.Add(-time.Second).UnixNano())
	if l.disable(now, "status 503: will retry") || l.breaker.disabled() {
		t.Fatal("disabled after one second of failures, disable_after is an hour")
	}
	if got := r.d.BreakerState("crm"); got != BreakerClosed {
		t.Fatalf("breaker %q, want closed", got)
	}
	// The run that did last disable_after still disables.
	l.fail.since.Store(now.Add(-2 * time.Hour).UnixNano())
	if !l.disable(now, "status 503: will retry") || r.d.BreakerState("crm") != BreakerDisabled {
		t.Fatal("a target failing for twice its disable_after was not disabled")
	}
}
