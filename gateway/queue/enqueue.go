package queue

import (
	"cmp"
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/hookgate/hookgate/delivery"
)

// Enqueue calls that arrive together share one Pebble batch: the first
// one in leads a group, yields so the ingest handlers already runnable
// reach Enqueue and join it, then writes every member's deliveries in one
// batch, commits it, and wakes them. RATIONALE.md, "Enqueue calls
// committed together", has the measurements.

// maxGroupBytes bounds a group's records: a call that would take it past
// this commits on its own, and so does every call this large, so a burst
// of large events never makes one huge batch (a batch of half a memtable
// or more is flushed at once; memTableSize). It stays below 1 MiB, the
// largest batch Pebble keeps in its pool for reuse, with room for the
// keys and pending states that come on top of the records.
const maxGroupBytes = 768 << 10

// enqCall is one Enqueue call in a group: its deliveries, their first
// sequence number, and the time they were enqueued.
type enqCall struct {
	ds    []delivery.Delivery
	first uint64
	now   int64
}

// enqGroup is the Enqueue calls committed in one batch. Its fields are
// under Store.groupMu; calls is the leader's alone once the group is
// closed.
type enqGroup struct {
	calls []enqCall
	bytes int64
	done  bool  // committed (or failed): err is the outcome
	err   error // the commit's
	cond  sync.Cond
	left  int // members that have not read the outcome yet
}

// write stores the deliveries of one Enqueue call, numbered from first,
// and returns the commit's error.
func (s *Store) write(ds []delivery.Delivery, first uint64, now, size int64) error {
	call := enqCall{ds: ds, first: first, now: now}
	s.groupMu.Lock()
	g := s.group
	if size > maxGroupBytes || (g != nil && g.bytes+size > maxGroupBytes) {
		s.groupMu.Unlock()
		return s.commitCalls([]enqCall{call})
	}
	lead := g == nil
	if lead {
		g = s.newGroup()
		s.group = g
	}
	g.calls = append(g.calls, call)
	g.bytes += size
	g.left++
	if lead {
		s.groupMu.Unlock()
		s.lead(g)
		s.groupMu.Lock()
	}
	for !g.done {
		g.cond.Wait()
	}
	err := g.err
	g.left--
	if g.left == 0 {
		s.freeGroup(g)
	}
	s.groupMu.Unlock()
	return err
}

// errLeaderPanicked is what a group's members get when the call that led
// it panicked before its commit returned.
var errLeaderPanicked = errors.New("queue: enqueue: the write of this group failed")

// lead writes and commits group g, which its caller leads, and tells its
// members the outcome. s.groupMu not held.
func (s *Store) lead(g *enqGroup) {
	settled := false
	defer func() {
		// A panic (an encoding bug, Pebble outside the commit) must not
		// leave the members waiting forever; it goes on up the leader's
		// stack.
		if !settled {
			s.groupMu.Lock()
			if s.group == g {
				s.group = nil
			}
			g.done, g.err = true, errLeaderPanicked
			g.cond.Broadcast()
			s.groupMu.Unlock()
		}
	}()
	if s.oneP.Load() {
		// With more Ps the other handlers run alongside and join
		// while this one yields nothing; with one, only if it yields.
		runtime.Gosched()
	}
	s.groupMu.Lock()
	s.group = nil // closed: later calls start the next group
	s.groupMu.Unlock()
	err := s.commitCalls(g.calls)
	s.groupMu.Lock()
	g.done, g.err, settled = true, err, true
	g.cond.Broadcast()
	s.groupMu.Unlock()
}

// newGroup takes a group from the free list; s.groupMu held.
func (s *Store) newGroup() *enqGroup {
	if n := len(s.freeGroups); n > 0 {
		g := s.freeGroups[n-1]
		s.freeGroups = s.freeGroups[:n-1]
		return g
	}
	g := &enqGroup{}
	g.cond.L = &s.groupMu
	return g
}

// freeGroup returns g, whose members have all read its outcome, to the
// free list; s.groupMu held.
func (s *Store) freeGroup(g *enqGroup) {
	clear(g.calls) // let go of the callers' deliveries
	g.calls, g.bytes, g.done, g.err = g.calls[:0], 0, false, nil
	if len(s.freeGroups) < 64 {
		s.freeGroups = append(s.freeGroups, g)
	}
}

// newStoredLen is the length of the stored value of d, enqueued at now
// as sequence seq: its first pending state and its record (codec.go,
// storedWithPending).
func newStoredLen(d *delivery.Delivery, seq uint64, now int64) int {
	rl := recordLen(d)
	o := orderOf(d.Ordered, d.OrderKey, seq)
	return storedLen(pendingLen(d.Target, dueOf(d, now), now, int64(rl), 0, &o), rl)
}

// putNewStored writes that stored value into v, newStoredLen bytes, and
// returns the record's part of it.
func putNewStored(v []byte, d *delivery.Delivery, seq uint64, now int64) []byte {
	rl := recordLen(d)
	o := orderOf(d.Ordered, d.OrderKey, seq)
	due := dueOf(d, now)
	pl := pendingLen(d.Target, due, now, int64(rl), 0, &o)
	p := putStoredHead(v, pl)
	appendPending(v[p:p], d.Target, due, now, int64(rl), 0, &o)
	rec := v[p+pl:]
	encodeRecord(rec, d)
	return rec
}

// commitCalls writes the deliveries of calls in one batch and commits it,
// each as one key: its pending state and its record (codec.go,
// storedWithPending). Calls go in sequence order (sorted by their first
// number), so each memtable insert starts its skip list search where the
// one before it ended (as the acks' deletes do, acks.go).
func (s *Store) commitCalls(calls []enqCall) error {
	if len(calls) > 1 {
		slices.SortFunc(calls, func(a, b enqCall) int { return cmp.Compare(a.first, b.first) })
	}
	b := s.db.NewBatch()
	for _, c := range calls {
		// Locked per call, so a Claim decoding a recent record waits
		// for one call's encoding at most, not a whole group's.
		s.recent.mu.Lock()
		for i := range c.ds {
			d := &c.ds[i]
			seq := c.first + uint64(i)
			k := keyOf(kindRecord, seq)
			op := b.SetDeferred(len(k), newStoredLen(d, seq, c.now))
			copy(op.Key, k[:])
			s.recent.put(seq, putNewStored(op.Value, d, seq, c.now))
			op.Finish()
		}
		s.recent.mu.Unlock()
	}
	s.batches.Add(1)
	return s.commitFor(b, s.syncOpt, len(calls))
}
