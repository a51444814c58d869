package queue

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A full disk, and a disk that fails.
//
// Pebble does not go on after a write to its log fails: the log writer
// keeps the error, every later synced commit fails with it, and the next
// log rotation panics with the commit lock held, after which every commit
// waits forever. So the store keeps the disk from filling (the free-space
// guard below) and, when a write fails anyway (another program filled
// the disk between two measurements, an I/O error), fails for good: it
// refuses every write from then on and calls Options.OnFatal, whose
// owner exits the process so a restart recovers from what is on disk.

var (
	// ErrNoSpace is wrapped by Enqueue while the queue's filesystem has
	// less free space than Options.MinFree. Ack, Retry and Dead go on.
	ErrNoSpace = errors.New("queue: low on disk space")
	// ErrFailed is wrapped by every write once the storage has failed (see
	// Options.OnFatal).
	ErrFailed = errors.New("queue: storage failed")
)

// failure is why the store failed; it is ErrFailed.
type failure struct{ err error }

func (f *failure) Error() string {
	return "queue: storage failed, no write is possible until a restart: " + f.err.Error()
}
func (f *failure) Unwrap() error        { return f.err }
func (f *failure) Is(target error) bool { return target == ErrFailed }

// pebbleFatal is the panic of pebbleLogger.Fatalf.
type pebbleFatal struct{ err error }

// fail makes the store refuse every write from now on and reports why,
// once, to OnFatal (or the log). It returns the failure.
func (s *Store) fail(err error) error {
	f := &failure{err}
	if !s.failure.CompareAndSwap(nil, f) {
		return s.failure.Load()
	}
	if s.opts.OnFatal != nil {
		s.opts.OnFatal(f)
	} else {
		s.log.Error("queue: the storage failed; every write is refused until a restart", "path", s.opts.Path, "err", err)
	}
	return f
}

// failPanic is fail for a panic that came out of Pebble.
func (s *Store) failPanic(v any) error {
	switch v := v.(type) {
	case pebbleFatal:
		return s.fail(v.err)
	case error:
		return s.fail(v)
	default:
		return s.fail(fmt.Errorf("pebble: %v", v))
	}
}

// commit commits b and closes it. A Pebble panic (Fatalf, or a failed log
// write found at a rotation) fails the store and comes back as its error;
// the batch is then left to the garbage collector, since Pebble may still
// hold it. Every write goes through here.
func (s *Store) commit(b *pebble.Batch, o *pebble.WriteOptions) error {
	return s.commitFor(b, o, 1)
}

// commitFor is commit for a batch that callers Enqueue calls wait on (a
// group: enqueue.go), each counted in s.waiting, which is how the log's
// fsync knows that other requests are under way (handoff_linux.go).
func (s *Store) commitFor(b *pebble.Batch, o *pebble.WriteOptions, callers int) (err error) {
	if f := s.failure.Load(); f != nil {
		b.Close()
		return f
	}
	defer func() {
		if v := recover(); v != nil {
			err = s.failPanic(v)
		}
	}()
	if o.Sync {
		s.waiting.Add(int32(callers))
		defer s.waiting.Add(-int32(callers))
	}
	err = b.Commit(o)
	b.Close()
	if !o.Sync && s.written != nil && !s.unsynced.Load() && s.unsynced.CompareAndSwap(false, true) {
		// The first write since the last fsync began: watch makes the
		// next one batchSyncEvery from now. After the commit, so that an
		// fsync which began before it (and may have missed it) is
		// followed by one that cannot.
		select {
		case s.written <- struct{}{}:
		default:
		}
	}
	return err
}

// syncLog fsyncs the log (s.life held), so writes committed without a
// sync become durable; a failure fails the store.
func (s *Store) syncLog() (err error) {
	if f := s.failure.Load(); f != nil {
		return f
	}
	defer func() {
		if v := recover(); v != nil {
			err = s.failPanic(v)
		}
	}()
	return s.db.LogData(nil, pebble.Sync)
}

// Health says why the store does not take new deliveries now, or nil.
// The reason is fit for /readyz: it names no path. It wraps ErrNoSpace or
// ErrFailed.
func (s *Store) Health() error {
	if s.failure.Load() != nil {
		return &reason{"the queue's storage failed and takes no more writes; hookgate must restart (the reason is in its log)", ErrFailed}
	}
	if s.low.Load() {
		return &reason{fmt.Sprintf("the queue's disk has %s free, less than the %s it keeps free: new events are refused until space is freed; queued deliveries keep going out",
			mib(s.freeDisk.Load()), mib(s.minFree.Load())), ErrNoSpace}
	}
	return nil
}

// reason is a sentence that is one of the errors above.
type reason struct {
	msg string
	err error
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.err }

// spaceCost is what Enqueue charges against the headroom for size record
// bytes: the log write now and the flush to a table later, plus keys and
// framing.
func spaceCost(size int64) int64 { return 2*size + 512 }

// takeSpace charges an Enqueue of size record bytes against the headroom,
// or refuses it with ErrNoSpace: while the store is low on space, or when
// the charge would take the disk below MinFree by the estimate. The
// estimate only refuses: it does not make the store low, which only a
// measurement below MinFree does (an estimate that ran out between two
// measurements must not leave the store low while the disk sits between
// MinFree and the margin it takes to leave the low state).
func (s *Store) takeSpace(size int64) error {
	if !s.low.Load() {
		cost := spaceCost(size)
		if s.headroom.Add(-cost) >= 0 {
			return nil
		}
		s.headroom.Add(cost)
	}
	return fmt.Errorf("queue: enqueue: %s free on the queue's disk (%s), and it keeps %s free: %w",
		mib(s.freeDisk.Load()), s.opts.Path, mib(s.minFree.Load()), ErrNoSpace)
}

// setLow records whether the store is low on space, logging each change.
func (s *Store) setLow(low bool) {
	if s.low.Swap(low) == low {
		return
	}
	free, minFree := mib(s.freeDisk.Load()), mib(s.minFree.Load())
	if low {
		s.log.Error("queue: low on disk space: new events are refused (503 queue_unavailable) until space is freed; queued deliveries keep going out",
			"path", s.opts.Path, "free", free, "min_free", minFree)
	} else {
		s.log.Info("queue: disk space is back; taking new events again", "path", s.opts.Path, "free", free, "min_free", minFree)
	}
}

// giveSpace returns the charge of an Enqueue that wrote nothing.
func (s *Store) giveSpace(size int64) { s.headroom.Add(spaceCost(size)) }

// measure reads the filesystem's free space, resets the headroom, and
// finds whether the store is low on space.
func (s *Store) measure() {
	du, err := s.fs.GetDiskUsage(s.opts.Path)
	if err != nil {
		// Without a figure, refusing everything would be worse than the
		// guard being off: a write that fails still fails the store.
		if s.headroom.Swap(math.MaxInt64/2) != math.MaxInt64/2 {
			s.log.Warn("queue: cannot read the free space of the queue's disk; not guarding it", "path", s.opts.Path, "err", err)
		}
		s.setLow(false)
		return
	}
	free := int64(min(du.AvailBytes, math.MaxInt64/4))
	minFree := s.opts.MinFree
	if minFree <= 0 {
		minFree = min(DefaultMinFree, int64(min(du.TotalBytes, math.MaxInt64/4)/4))
	}
	s.freeDisk.Store(free)
	s.minFree.Store(minFree)
	s.headroom.Store(free - minFree)
	// A quarter more than MinFree to leave the low state, so a disk at the
	// line does not flap between refusing and taking every second.
	switch {
	case free < minFree:
		s.setLow(true)
	case free >= minFree+minFree/4:
		s.setLow(false)
	}
}

// watch measures the free space every interval until Close, and commits
// the acks an Ack left. With sync "batch" it also fsyncs the log
// batchSyncEvery after the first write since the last fsync, so a write
// that was never synced is at most about that old, and a log that can no
// longer be written is found then rather than at the next rotation.
func (s *Store) watch(every time.Duration) {
	defer close(s.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	syncAt := time.NewTimer(batchSyncEvery) // armed by written
	syncAt.Stop()
	defer syncAt.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.written: // nil, so never, with sync "always"
			syncAt.Reset(batchSyncEvery)
			continue
		case <-syncAt.C:
			// Writes from here on are not in this fsync: the next one
			// takes them.
			s.unsynced.Store(false)
			s.life.RLock()
			if !s.closed {
				s.syncLog()
			}
			s.life.RUnlock()
			continue
		case <-t.C:
		}
		s.measure()
		s.oneP.Store(runtime.GOMAXPROCS(0) == 1) // it may change at run time
		s.life.RLock()
		if !s.closed && s.failure.Load() == nil && s.flushMu.TryLock() {
			// The acks an Ack left (acks.go, maxAckRounds), unless a
			// commit of acks is under way: its Ack takes them next, and
			// a tick waiting behind it would only delay the next
			// measurement.
			s.flushAcksLocked()
			s.flushMu.Unlock()
		}
		s.life.RUnlock()
	}
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
