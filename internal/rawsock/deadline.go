//go:build linux

package rawsock

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Lazy deadlines.
//
// Why: fasthttp sets a deadline before every read and write phase, five a
// proxied request (the server's idle and read deadlines, its write
// deadline, the client's write and read deadlines). Each goes through the
// runtime's poller: a clock read and a timer moved in the timer heap under
// the descriptor's lock, about 0.2 µs each on this project's benchmark
// machine, about 3% of a passthrough request's CPU (benchmarks/HISTORY.md,
// sixteenth run). The deadlines are seconds away and almost never fire,
// and the server's read deadline swings between the idle timeout (60 s)
// and the read timeout (10 s) at every request, so skipping updates that
// change little (nginx's lazy timers) would not skip these.
//
// How: a deadline more than lazyAfter away is only recorded in the Conn;
// a sweeper goroutine looks at the recorded deadlines every sweepEvery and
// hands an expired one to the runtime, which then fails the waiting (or
// next) Read or Write with the usual timeout error. A deadline that near
// or nearer, a zero one (none) after one was handed over, and one set
// after an expired one fired, go to the runtime at once, as before. So a
// deadline fires at its time, or at most about sweepEvery late when it was
// set more than lazyAfter ahead: a 10 s timeout fires within 10.1 s.
//
// A Conn joins the sweeper's set at its first lazy deadline and leaves it
// at Close; the sweeper stops when the set is empty. The sweeper's clock,
// read once a tick, is what a Set*Deadline compares with, so the fast path
// reads no clock: it takes the direction's lock and stores an integer.

// The two bounds, variables so that tests can shorten them (before any
// Conn uses a lazy deadline).
var (
	sweepEvery = 100 * time.Millisecond
	lazyAfter  = time.Second
)

// pokeAfter is how many whole ticks a server's wait without reading lasts
// before the sweeper pokes it (ask.go): one, 100 to 200 ms. Atomic, since
// tests change it while the sweeper runs.
var pokeAfter atomic.Int64

func init() { pokeAfter.Store(1) }

// epoch is what lazy deadlines are counted from, in nanoseconds: a
// time.Time with the monotonic clock, so differences ignore wall-clock
// steps as the runtime's deadlines do.
var epoch = time.Now()

// deadline is one direction's deadline.
type deadline struct {
	mu sync.Mutex
	// at is the lazy deadline, in ns since epoch; 0: none recorded.
	at int64
	// armed: the runtime holds a deadline for this direction (a near one
	// set through it, or a lazy one the sweeper handed over), which a
	// later lazy or zero deadline must clear.
	armed bool

	// A server's wait without reading (ask.go): blind is the sweeper's
	// tick count when it began, plus one (0: no such wait); poked, the
	// sweeper ended it with a deadline in the past, which the reader
	// clears.
	blind int64
	poked bool
}

// watch puts a wait without reading under the sweeper's eye. It reports
// false, and watches nothing, when the runtime holds a deadline (a near
// one, or one expired): a poke would overwrite it, so the caller must
// read instead of waiting blind.
func (d *deadline) watch() bool {
	d.mu.Lock()
	ok := !d.armed
	if ok {
		d.blind = sweeper.ticks.Load() + 1
	}
	d.mu.Unlock()
	return ok
}

// unwatch ends the watch, and reports whether the sweeper poked the wait;
// it clears the poke's deadline then, unless a real one replaced it.
func (d *deadline) unwatch(apply func(time.Time) error) (poked bool) {
	d.mu.Lock()
	poked, d.blind, d.poked = d.poked, 0, false
	if poked && !d.armed {
		apply(time.Time{})
	}
	d.mu.Unlock()
	return poked
}

// set records or applies t for one direction; apply is the runtime's
// setter for it (bound once, in Wrap, so that a call allocates nothing).
//
// Only a deadline with a monotonic clock reading (time.Now().Add(...),
// as fasthttp and the gateway make them) can be lazy: the sweeper
// measures with the monotonic clock, and a wall-clock deadline
// (time.Unix, t.UTC()) compared with it would fire late or early by any
// step of the wall clock since epoch. The runtime converts those at once.
func (d *deadline) set(c *Conn, t time.Time, apply func(time.Time) error) error {
	if !t.IsZero() && t != t.Round(0) { // Round(0) strips the monotonic reading
		// at > now also keeps a deadline centuries past (t.Sub saturates)
		// from wrapping round into a lazy one.
		at := int64(t.Sub(epoch))
		if now := sweeper.now.Load(); at > now && at-now > int64(lazyAfter) {
			switch c.set.Load() {
			case inSet:
				return d.record(at, apply)
			case notInSet:
				if join(c) {
					return d.set(c, t, apply) // decided again by a fresh clock
				}
			}
		}
	}
	d.mu.Lock()
	d.at = 0
	var err error
	if !t.IsZero() || d.armed {
		d.armed = !t.IsZero()
		err = apply(t)
	}
	d.mu.Unlock()
	return err
}

// record keeps at as the lazy deadline, taking back from the runtime one
// it holds for this direction; c is in the sweeper's set.
func (d *deadline) record(at int64, apply func(time.Time) error) error {
	d.mu.Lock()
	d.at = at
	var err error
	if d.armed {
		d.armed = false
		err = apply(time.Time{})
	}
	d.mu.Unlock()
	return err
}

// setIn is set for a deadline after from now (none for after <= 0). A
// lazy one is counted from the sweeper's clock, which is about a tick
// behind at most while c is in its set (the sweeper runs then), plus a
// tick: it does not fire early (unless the sweeper itself runs late, and
// then by no more than that), and at most about two ticks late, like a
// deadline set with the clock. Reading no clock is the point: the clock
// read is what is left of a lazy deadline's cost, about 60 ns on the
// benchmark machine right after a system call (benchmarks/HISTORY.md,
// twentieth run).
func (d *deadline) setIn(c *Conn, after time.Duration, apply func(time.Time) error) error {
	if after > lazyAfter && c.set.Load() == inSet {
		return d.record(sweeper.now.Load()+int64(after+sweepEvery), apply)
	}
	return d.set(c, in(after), apply)
}

// in is the deadline after from now; none for after <= 0.
func in(after time.Duration) time.Time {
	if after <= 0 {
		return time.Time{}
	}
	return time.Now().Add(after)
}

// SetReadTimeout sets c's read deadline after from now, as
// c.SetReadDeadline(time.Now().Add(after)) would; after <= 0 clears it.
// For a rawsock connection and a lazy deadline it reads no clock (see
// deadline.setIn): a server's deadlines move at every request.
func SetReadTimeout(c net.Conn, after time.Duration) error {
	if w, ok := c.(*Conn); ok {
		return w.r.dl.setIn(w, after, w.r.apply)
	}
	return c.SetReadDeadline(in(after))
}

// SetWriteTimeout is SetReadTimeout for the write deadline.
func SetWriteTimeout(c net.Conn, after time.Duration) error {
	if w, ok := c.(*Conn); ok {
		return w.w.dl.setIn(w, after, w.w.apply)
	}
	return c.SetWriteDeadline(in(after))
}

// expire hands d's lazy deadline to the runtime if it has passed by now,
// and pokes a wait without reading that began before the last tick (the
// sweeper's tick count is tick).
func (d *deadline) expire(now, tick int64, apply func(time.Time) error) {
	d.mu.Lock()
	switch {
	case d.at != 0 && d.at <= now:
		// In the past: the runtime wakes a waiting call with its timeout
		// error, and fails the next one at once, until a new deadline.
		apply(epoch.Add(time.Duration(d.at)))
		d.at, d.armed = 0, true
	case d.blind != 0 && tick-d.blind >= pokeAfter.Load() && !d.armed:
		// It has waited pokeAfter ticks at least: wake it the same way.
		apply(epoch)
		d.blind, d.poked = 0, true
	}
	d.mu.Unlock()
}

// A Conn's standing with the sweeper (Conn.set).
const (
	notInSet = iota
	inSet
	closed // Close was called: never to join the set again
)

// sweeper is the set of Conns with lazy deadlines and the goroutine that
// expires them.
var sweeper struct {
	now   atomic.Int64 // ns since epoch, read at the last tick (or join)
	ticks atomic.Int64 // ticks so far, for waits without reading

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	running bool
	list    []*Conn // the tick's copy of conns, reused
}

// join adds c to the sweeper's set (starting the sweeper if it is not
// running) and refreshes the sweeper's clock. It reports false when c is
// closed: its deadlines then go to the runtime, which fails them.
func join(c *Conn) bool {
	s := &sweeper
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.set.Load() == closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	c.set.Store(inSet)
	s.now.Store(int64(time.Since(epoch)))
	if !s.running {
		s.running = true
		go sweep()
	}
	return true
}

// leave takes c out of the sweeper's set, at Close.
func leave(c *Conn) {
	s := &sweeper
	s.mu.Lock()
	c.set.Store(closed)
	delete(s.conns, c)
	s.mu.Unlock()
}

// sweep runs while any Conn is in the set: once a tick it reads the clock
// and expires the deadlines that have passed.
func sweep() {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for range tick.C {
		if !sweepOnce(int64(time.Since(epoch))) {
			return
		}
	}
}

// sweepOnce is one tick at now: it expires the deadlines of the Conns in
// the set, or stops the sweeper (reporting false) when the set is empty.
// A tick visits every Conn in the set, idle ones too: about 30 ns each
// (BenchmarkSweep), so 10,000 keep-alive connections cost about 0.3% of a
// core.
func sweepOnce(now int64) bool {
	s := &sweeper
	s.now.Store(now)
	tick := s.ticks.Add(1)
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.running = false
		s.conns = nil // a map keeps its peak size: let a spike's go
		s.mu.Unlock()
		return false
	}
	s.list = s.list[:0]
	for c := range s.conns {
		s.list = append(s.list, c)
	}
	list := s.list
	s.mu.Unlock()
	// Outside the set's lock: a Conn's Close or join does not wait for a
	// tick. Only the sweeper's goroutine (or a benchmark) uses list.
	for i, c := range list {
		c.r.dl.expire(now, tick, c.r.apply)
		c.w.dl.expire(now, tick, c.w.apply)
		list[i] = nil
	}
	return true
}

// SetReadDeadline is net.Conn's: see the lazy deadlines above for when it
// reaches the runtime.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.r.dl.set(c, t, c.r.apply)
}

// SetWriteDeadline is net.Conn's, as SetReadDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.w.dl.set(c, t, c.w.apply)
}

// SetDeadline sets both directions' deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	err := c.SetReadDeadline(t)
	if werr := c.SetWriteDeadline(t); err == nil {
		err = werr
	}
	return err
}

// Close closes the connection and takes it out of the sweeper's set; a
// server's connection first sends the answer it holds (ask.go).
func (c *Conn) Close() error {
	c.flush()
	leave(c)
	return c.Conn.Close()
}
