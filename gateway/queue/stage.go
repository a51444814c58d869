package queue

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hookgate/hookgate/delivery"
)

// With sync "batch" an Enqueue does not write to Pebble: it stages its
// deliveries in memory, and the store writes what is still pending of
// them 10-20 ms later (stageEvery). A delivery acked before then, nearly
// every one while the targets keep up, is never written at all: no log
// write, no memtable insert, no delete at its ack, nothing for a flush or
// a compaction. The store writes staged deliveries
//
//   - at the latest two ticks after their Enqueue, in Enqueue order;
//   - before anything else is written about one of them (a Retry, a dead
//     letter), so what is on disk never refers to a record that is not;
//   - when a generation fills up (stageBytes), and at Close.
//
// A claim reads a staged record from its generation, which is emptied
// only once its write is visible; after that from the ring of recent
// records, which gets what is written, then from Pebble.
//
// What a crash can lose is the staged deliveries (up to 20 ms of them)
// and what was written since the log's last fsync (batchSyncEvery after
// a write, 30 ms): about the last 50 ms of acknowledged events, as with
// sync "batch" before staging. The deliveries of one Enqueue call are in
// one generation, written in one batch: still all or none. RATIONALE.md,
// "Staged deliveries", has the measurements.

// stageEvery is the tick of the staging: a delivery staged during one
// tick is written at the end of the next one, so it has between one and
// two ticks to be acked instead.
const stageEvery = 10 * time.Millisecond

// stageBytes bounds a generation's records: an Enqueue that would take the
// current one past it writes the older generation first and moves on
// (rotate), so a burst never holds more than three generations in memory
// (the two and the one being written). 2 MiB is 40 ms of the load
// harness's async rate, so the ticks, not the bound, rotate under a
// steady load. A call of more than a quarter of a generation, or with a
// record too large for the ring of recent ones, is not staged: it is
// written at once, behind everything staged before it.
const stageBytes = 2 << 20

// stagedItem is one staged delivery: its sequence number, and where its
// stored value (codec.go, storedWithPending: its first pending state and
// its record) lies in its generation's buffer.
type stagedItem struct {
	seq    uint64
	at, to int
}

// generation is the deliveries staged during one tick. Its epoch changes
// (under stager.genMu) each time it is emptied for reuse, so a claim that
// took a record's place in it knows whether the record is still there.
type generation struct {
	buf   []byte
	items []stagedItem
	epoch atomic.Uint64
}

// stager holds the two generations of staged deliveries and the spare
// that the next rotation makes the current one. cur, old, spare, ticking
// and the counts are under Store.mu; a generation's contents are written
// under Store.mu while it is cur, and emptied under genMu once written.
type stager struct {
	// rotateMu serializes rotations: each writes the older generation,
	// and one generation is written after the other.
	rotateMu sync.Mutex
	// genMu is held shared while a claim decodes a staged record, and
	// exclusively while a written generation is emptied for reuse.
	genMu    sync.RWMutex
	cur, old *generation
	spare    *generation
	// ticking: the loop (stageLoop) is running its ticks; a stage into an
	// empty store wakes it through kick otherwise.
	ticking bool
	kick    chan struct{}
	// Counted for the tests (TestStagedUnderLoad logs them): deliveries
	// staged, and those written because they were still pending, once
	// their commit is visible.
	staged, written uint64
}

func newStager() *stager {
	return &stager{cur: &generation{}, old: &generation{}, spare: &generation{}, kick: make(chan struct{}, 1)}
}

// stageable says whether an Enqueue of ds, size bytes of records, is
// staged rather than written at once.
func (s *Store) stageable(ds []delivery.Delivery, size int64) bool {
	if s.stage == nil || size > stageBytes/4 {
		return false
	}
	for i := range ds {
		if recordLen(&ds[i]) > recentMax {
			return false
		}
	}
	return true
}

// stageCall stages the deliveries of one Enqueue call, numbered from
// first, and puts them in the queue: the staged counterpart of write and
// the bookkeeping after it (Store.Enqueue). Claims read the records from
// the generation (get); the ring of recent ones gets those still pending
// when their generation is written (rotate), so a staged record is
// copied once, into memory the next generations reuse, instead of also
// streaming through the ring.
func (s *Store) stageCall(ds []delivery.Delivery, first uint64, now, size int64) error {
	st := s.stage
	s.mu.Lock()
	for len(st.cur.buf)+int(size)+len(ds)*64 > stageBytes && len(st.cur.items) > 0 {
		// Full: write the older generation and start a new one. Rare
		// (a burst, or deliveries far behind), so simply done under
		// the caller's time.
		s.mu.Unlock()
		if err := s.rotate(); err != nil {
			s.mu.Lock()
			s.unreserve(ds, first)
			s.mu.Unlock()
			return err
		}
		s.mu.Lock()
	}
	g := st.cur
	for i := range ds {
		d := &ds[i]
		seq := first + uint64(i)
		at, n := len(g.buf), newStoredLen(d, seq, now)
		g.buf = slices.Grow(g.buf, n)[:at+n] // every byte is written below
		putNewStored(g.buf[at:], d, seq, now)
		g.items = append(g.items, stagedItem{seq: seq, at: at, to: len(g.buf)})
	}
	st.staged += uint64(len(ds))
	s.commitEntries(ds, first, now, g)
	wake := !st.ticking
	st.ticking = true
	s.mu.Unlock()
	if wake {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// rotate writes what is still pending of the older generation and makes
// the current one the older: a generation is written one rotation after
// it stopped taking deliveries. It returns the write's error (the store
// has failed then: health.go).
func (s *Store) rotate() error {
	st := s.stage
	st.rotateMu.Lock()
	defer st.rotateMu.Unlock()
	if f := s.failure.Load(); f != nil {
		// Nothing is written any more: what is staged stays where
		// claims read it.
		return f
	}
	// flushMu orders this write before the deletes of any ack that finds
	// one of its deliveries written (acks.go): a delete committed before
	// its record would let the record come back.
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	s.mu.Lock()
	g := st.old
	live := g.items[:0]
	for _, it := range g.items {
		if e := s.entries[it.seq]; e != nil && e.staged {
			e.staged = false
			live = append(live, it)
		}
	}
	st.old, st.cur, st.spare = st.cur, st.spare, nil
	s.mu.Unlock()

	if len(live) > 0 {
		b := s.db.NewBatch()
		for _, it := range live {
			k := keyOf(kindRecord, it.seq)
			b.Set(k[:], g.buf[it.at:it.to], nil)
		}
		s.batches.Add(1)
		if err := s.commit(b, pebble.NoSync); err != nil {
			// The store has failed (health.go): the generation stays
			// as it is, out of the rotation, so claims still read it.
			return err
		}
		// Pending for longer than a generation: a backlog, whose claims
		// read the ring from now on.
		s.recent.mu.Lock()
		for _, it := range live {
			if rec, _, rerr := splitStored(g.buf[it.at:it.to]); rerr == nil {
				s.recent.put(it.seq, rec)
			}
		}
		s.recent.mu.Unlock()
	}
	st.genMu.Lock()
	g.epoch.Add(1)
	g.buf, g.items = g.buf[:0], g.items[:0]
	st.genMu.Unlock()
	s.mu.Lock()
	st.spare = g
	// Counted once visible, so a test that sees the count finds the
	// records in Pebble.
	st.written += uint64(len(live))
	s.mu.Unlock()
	return nil
}

// inGeneration says whether e's record is still in the generation it was
// staged in: staged, or being written by a rotation (until its commit is
// visible and the generation emptied). s.mu held.
func (e *entry) inGeneration() bool {
	return e.stGen != nil && e.stGen.epoch.Load() == e.stEpoch
}

// recordFirst makes sure the record of a delivery that Retry or Dead is
// about to write more about is committed first; staged and writing are
// its entry's, as read under s.mu. A staged one is written with
// everything staged; one a rotation is writing is waited for: that
// rotation took it under s.mu after taking flushMu, and holds flushMu
// until its commit is done.
func (s *Store) recordFirst(staged, writing bool) error {
	switch {
	case staged:
		return s.flushStaged()
	case writing:
		s.flushMu.Lock()
		s.flushMu.Unlock()
	}
	return nil
}

// get decodes into d the staged value v of generation g, taken from an
// entry in g's epoch epoch, and reports whether it was still there (else
// it was written, and is in the ring or in Pebble).
func (st *stager) get(g *generation, epoch uint64, v []byte, d *delivery.Delivery, in interner) (bool, error) {
	st.genMu.RLock()
	defer st.genMu.RUnlock()
	if g.epoch.Load() != epoch {
		return false, nil
	}
	return true, decodeStored(v, d, in)
}

// flushStaged writes every staged delivery, both generations in order.
func (s *Store) flushStaged() error {
	if s.stage == nil {
		return nil
	}
	if err := s.rotate(); err != nil {
		return err
	}
	return s.rotate()
}

// stageLoop ticks the staging while something is staged, and sleeps while
// nothing is, so an idle store makes no wake-ups.
func (s *Store) stageLoop() {
	st := s.stage
	t := time.NewTimer(stageEvery)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-st.kick:
		}
		for {
			t.Reset(stageEvery)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			s.life.RLock()
			if !s.closed && s.failure.Load() == nil {
				s.rotate()
			}
			s.life.RUnlock()
			s.mu.Lock()
			// Failed, nothing is written any more: no point ticking.
			idle := len(st.cur.items) == 0 && len(st.old.items) == 0 || s.failure.Load() != nil
			if idle {
				st.ticking = false
			}
			s.mu.Unlock()
			if idle {
				break
			}
		}
	}
}
