//go:build linux

package rawsock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// The package's tests run with short bounds, so that lazy deadlines are
// tens of milliseconds away rather than seconds: every deadline of 50 ms
// or more in these tests is kept by the sweeper, nearer ones by the
// runtime. The sweeper pokes a server's wait without reading after 200
// ticks (1 s), so that a test whose goroutines a loaded machine stalls
// for a while is not poked (the tests count the waits exactly); the tests
// of the poke use pokeSoon.
func TestMain(m *testing.M) {
	lazyAfter, sweepEvery = 50*time.Millisecond, 5*time.Millisecond
	pokeAfter.Store(200)
	os.Exit(m.Run())
}

// pokeSoon makes the sweeper poke a wait without reading after one tick,
// as in production, for the rest of the test.
func pokeSoon(t *testing.T) {
	pokeAfter.Store(1)
	t.Cleanup(func() { pokeAfter.Store(200) })
}

// freshTick waits for the sweeper's next tick, so that its clock is as
// fresh as it gets for the next few milliseconds.
func freshTick(t *testing.T) {
	t.Helper()
	for n, deadline := sweeper.ticks.Load(), time.Now().Add(5*time.Second); sweeper.ticks.Load() == n; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not tick for 5 s; is any Conn in its set?")
		}
	}
}

// lazy reports whether d holds a deadline the runtime does not know yet.
func lazy(d *deadline) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at != 0
}

// rescue closes peer if the test still runs in 10 s: a deadline that never
// fires then fails the test with EOF or a reset instead of hanging it.
func rescue(t *testing.T, peer net.Conn) {
	tm := time.AfterFunc(10*time.Second, func() { peer.Close() })
	t.Cleanup(func() { tm.Stop() })
}

// A far read deadline is kept by the sweeper, and still ends a Read that
// waits past it: not before it, with the runtime's timeout error.
func TestLazyReadDeadlineFires(t *testing.T) {
	c, peer := pair(t)
	rescue(t, peer)
	deadline := time.Now().Add(200 * time.Millisecond)
	if err := c.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if !lazy(&c.r.dl) {
		t.Fatal("a deadline 200 ms away went to the runtime; want it kept lazily")
	}
	_, err := c.Read(make([]byte, 16))
	returned := time.Now()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past a lazy deadline: %v; want a timeout", err)
	}
	if returned.Before(deadline) {
		t.Fatalf("Read timed out %v before its deadline", deadline.Sub(returned))
	}
	if late := returned.Sub(deadline); late > 5*time.Second {
		t.Fatalf("Read timed out %v after its deadline", late)
	}
	// Until a new deadline, the next Read fails at once, as the runtime's
	// deadlines do.
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a second Read past the deadline: %v; want a timeout", err)
	}
}

// The same for a Write waiting for room in full buffers.
func TestLazyWriteDeadlineFires(t *testing.T) {
	c, peer := pair(t)
	rescue(t, peer)
	deadline := time.Now().Add(200 * time.Millisecond)
	c.SetWriteDeadline(deadline)
	if !lazy(&c.w.dl) {
		t.Fatal("a write deadline 200 ms away went to the runtime; want it kept lazily")
	}
	n, err := c.Write(make([]byte, 64<<20)) // the peer never reads
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
		t.Fatalf("Write past a lazy deadline = %d, %v; want less than all of it and a timeout", n, err)
	}
	if time.Now().Before(deadline) {
		t.Fatal("Write timed out before its deadline")
	}
}

// A lazy deadline moved later before it passes does not fire at its old
// time; one cleared (zero) does not fire at all.
func TestLazyDeadlineMovedOrCleared(t *testing.T) {
	for _, clear := range []bool{false, true} {
		c, peer := pair(t)
		c.SetReadDeadline(time.Now().Add(80 * time.Millisecond))
		if clear {
			c.SetReadDeadline(time.Time{})
		} else {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
		go func() {
			time.Sleep(300 * time.Millisecond) // well past the first deadline
			peer.Write([]byte("late"))
		}()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
			t.Fatalf("clear %v: Read after moving the deadline = %q, %v; want the data", clear, buf, err)
		}
	}
}

// After a lazy deadline fired, a new lazy deadline or none lifts the
// runtime's expired one: the next Read waits for data again.
func TestAfterLazyDeadlineFired(t *testing.T) {
	for _, next := range []time.Duration{0, 5 * time.Second} {
		c, peer := pair(t)
		rescue(t, peer)
		c.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
		if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v; want a timeout", err)
		}
		if next == 0 {
			c.SetReadDeadline(time.Time{})
		} else {
			c.SetReadDeadline(time.Now().Add(next))
			if !lazy(&c.r.dl) {
				t.Fatal("the new deadline went to the runtime; want it kept lazily")
			}
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			peer.Write([]byte("next"))
		}()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "next" {
			t.Fatalf("next %v: Read after the fired deadline was replaced = %q, %v", next, buf, err)
		}
	}
}

// A near deadline replaces a lazy one and fires on time, the lazy one
// forgotten.
func TestNearDeadlineReplacesLazy(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if lazy(&c.r.dl) {
		t.Fatal("a deadline 10 ms away was kept lazily")
	}
	start := time.Now()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v; want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Read returned after %v", d)
	}
}

// SetDeadline sets both directions.
func TestSetDeadlineBoth(t *testing.T) {
	c, _ := pair(t)
	c.SetDeadline(time.Now().Add(time.Hour))
	if !lazy(&c.r.dl) || !lazy(&c.w.dl) {
		t.Fatal("SetDeadline did not record both directions' deadlines")
	}
	c.SetDeadline(time.Time{})
	if lazy(&c.r.dl) || lazy(&c.w.dl) {
		t.Fatal("SetDeadline(zero) left a deadline recorded")
	}
}

// Close takes a Conn out of the sweeper's set, and the sweeper stops when
// the set is empty: an idle process has no ticker running.
func TestSweeperLeavesClosedConns(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	sweeper.mu.Lock()
	_, in := sweeper.conns[c]
	sweeper.mu.Unlock()
	if !in {
		t.Fatal("a Conn with a lazy deadline is not in the sweeper's set")
	}
	c.Close()
	sweeper.mu.Lock()
	_, in = sweeper.conns[c]
	n := len(sweeper.conns)
	sweeper.mu.Unlock()
	if in {
		t.Fatal("a closed Conn is still in the sweeper's set")
	}
	if n != 0 { // no other test's connection is open now
		t.Fatalf("%d Conns left in the sweeper's set", n)
	}
	waitSweeperStopped(t) // the set is empty: it must stop
	// A deadline set on the closed Conn goes to the runtime, which refuses
	// it, and the Conn does not join the set again.
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err == nil {
		t.Fatal("SetReadDeadline on a closed Conn succeeded")
	}
	sweeper.mu.Lock()
	_, in = sweeper.conns[c]
	sweeper.mu.Unlock()
	if in {
		t.Fatal("a closed Conn joined the sweeper's set again")
	}
}

// Deadlines set from several goroutines while the sweeper expires some of
// them leave the Conn usable (run with -race, this checks the locking).
func TestLazyDeadlinesConcurrently(t *testing.T) {
	c, peer := pair(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ahead := time.Duration(40+(i*7+g*13)%60) * time.Millisecond
				if g%2 == 0 {
					c.SetReadDeadline(time.Now().Add(ahead))
				} else {
					c.SetWriteDeadline(time.Now().Add(ahead))
				}
				if i%20 == 0 {
					time.Sleep(sweepEvery)
				}
			}
		}()
	}
	wg.Wait()
	c.SetDeadline(time.Time{})
	time.Sleep(150 * time.Millisecond) // past every deadline set above
	go peer.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("Read after the deadlines were cleared = %q, %v", buf, err)
	}
	if _, err := c.Write([]byte("ok")); err != nil {
		t.Fatalf("Write after the deadlines were cleared: %v", err)
	}
}

// BenchmarkSweep is one sweeper tick over 10,000 connections holding lazy
// deadlines that have not expired (idle keep-alive connections): the
// sweeper's standing cost, per connection.
func BenchmarkSweep(b *testing.B) {
	const n = 10000
	noop := func(time.Time) error { return nil }
	conns := make([]*Conn, n)
	for i := range conns {
		c := &Conn{}
		c.r.apply, c.w.apply = noop, noop
		c.r.dl.at, c.w.dl.at = 1<<62, 1<<62 // far ahead: never expire
		conns[i] = c
	}
	// The benchmark is the sweeper while it runs: it waits for a running
	// one (left by earlier tests) to stop, and keeps another from
	// starting, since both would use the sweeper's list.
	s := &sweeper
	waitSweeperStopped(b)
	s.mu.Lock()
	s.running = true
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	for _, c := range conns {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	b.Cleanup(func() {
		s.mu.Lock()
		for _, c := range conns {
			delete(s.conns, c)
		}
		s.running = false
		s.mu.Unlock()
	})
	now := int64(time.Since(epoch))
	b.ResetTimer()
	for b.Loop() {
		sweepOnce(now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/conn")
}

// waitSweeperStopped waits until the sweeper has stopped (no Conn holds a
// lazy deadline).
func waitSweeperStopped(tb testing.TB) {
	tb.Helper()
	for start := time.Now(); ; time.Sleep(sweepEvery) {
		sweeper.mu.Lock()
		running := sweeper.running
		sweeper.mu.Unlock()
		if !running {
			return
		}
		if time.Since(start) > 5*time.Second {
			tb.Fatal("the sweeper still runs: a Conn with a lazy deadline was left open")
		}
	}
}

// Once the sweeper has stopped (and let its set go), the next lazy
// deadline starts it again, and fires.
func TestLazyDeadlineAfterSweeperStopped(t *testing.T) {
	waitSweeperStopped(t)
	sweeper.mu.Lock()
	conns := sweeper.conns
	sweeper.mu.Unlock()
	if conns != nil {
		t.Fatalf("the stopped sweeper keeps a set of %d", len(conns))
	}
	c, peer := pair(t)
	rescue(t, peer)
	c.SetReadDeadline(time.Now().Add(3 * lazyAfter))
	if !lazy(&c.r.dl) {
		t.Fatal("the deadline went to the runtime; want it kept lazily")
	}
	start := time.Now()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after %v: %v; want a timeout", time.Since(start), err)
	}
}

// Deadlines that cannot be lazy go to the runtime: one without a
// monotonic clock reading (the sweeper's clock is monotonic, so a wall
// clock step would move it), and one in the past, which fails the next
// Read at once.
func TestDeadlinesTheRuntimeKeeps(t *testing.T) {
	c, peer := pair(t)
	rescue(t, peer)
	c.SetReadDeadline(time.Now().Add(time.Hour).Round(0))
	if lazy(&c.r.dl) {
		t.Fatal("a wall-clock deadline was kept lazily")
	}
	start := time.Now() // before the deadline is read off the clock
	c.SetReadDeadline(time.Now().Add(3 * lazyAfter).Round(0))
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v; want a timeout", err)
	}
	if took := time.Since(start); took < 3*lazyAfter {
		t.Fatalf("the wall-clock deadline fired after %v; want %v", took, 3*lazyAfter)
	}
	// A past deadline goes to the runtime, which fails the Read at once
	// (the bound below is for a loaded machine; that it is not the
	// sweeper's is what lazy checks).
	c.SetReadDeadline(time.Now().Add(-time.Hour))
	if lazy(&c.r.dl) {
		t.Fatal("a past deadline was kept lazily")
	}
	start = time.Now()
	if _, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Read after %v: %v; want a timeout at once", time.Since(start), err)
	}
}

// SetReadTimeout keeps a far deadline lazily, counted from the sweeper's
// clock plus a tick (no clock read), so it fires neither before its time
// nor long after; a near one goes to the runtime at once; after <= 0
// clears either. SetWriteTimeout does the same for writes.
func TestTimeouts(t *testing.T) {
	c, peer := pair(t)
	rescue(t, peer)
	c.SetReadDeadline(time.Now().Add(time.Hour)) // joins the sweeper's set
	start := time.Now()
	before := sweeper.now.Load() // a tick may come between the two readings
	if err := SetReadTimeout(c, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	after := sweeper.now.Load()
	c.r.dl.mu.Lock()
	at := c.r.dl.at
	c.r.dl.mu.Unlock()
	if at == 0 {
		t.Fatal("a timeout of 200 ms went to the runtime; want it kept lazily")
	}
	if d := int64(200*time.Millisecond + sweepEvery); at < before+d || at > after+d {
		t.Fatalf("the lazy deadline is at %d ns; want the sweeper's clock (%d or %d) plus the timeout and a tick", at, before, after)
	}
	_, err := c.Read(make([]byte, 16))
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past a lazy timeout: %v; want a timeout", err)
	}
	// Not early, but for the sweeper's own lateness: its tick is 5 ms in
	// these tests, and a loaded machine delays its goroutine by more.
	if took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Read timed out after %v; want 200 ms or a few ticks more", took)
	}

	// A near timeout: the runtime's, at once, replacing the fired one.
	if err := SetReadTimeout(c, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if lazy(&c.r.dl) {
		t.Fatal("a timeout of 10 ms was kept lazily")
	}
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past a near timeout: %v; want a timeout", err)
	}

	// None: the next Read waits for data again.
	SetReadTimeout(c, time.Hour)
	SetWriteTimeout(c, time.Hour)
	if !lazy(&c.r.dl) || !lazy(&c.w.dl) {
		t.Fatal("timeouts of an hour were not kept lazily")
	}
	SetReadTimeout(c, 0)
	SetWriteTimeout(c, 0)
	if lazy(&c.r.dl) || lazy(&c.w.dl) {
		t.Fatal("a timeout of 0 left a deadline recorded")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		peer.Write([]byte("next"))
	}()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "next" {
		t.Fatalf("Read with the timeout cleared = %q, %v; want the data", buf, err)
	}
}

// A connection rawsock does not wrap gets the deadline from the clock.
func TestTimeoutsOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	SetReadTimeout(a, 20*time.Millisecond)
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on a pipe past its timeout: %v; want a timeout", err)
	}
	SetWriteTimeout(a, 20*time.Millisecond)
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write on a pipe past its timeout: %v; want a timeout", err)
	}
}
