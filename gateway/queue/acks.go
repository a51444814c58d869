package queue

import (
	"cmp"
	"runtime"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// ackedEntry is an ack whose deletes are not committed yet.
type ackedEntry struct {
	seq      uint64
	attempts int
	pkey     pkeyState
}

// pkeyState is what a delivery's p key is, which decides how its ack
// deletes it.
type pkeyState uint8

const (
	// pkeyNone: there is none. The delivery's pending state is the one
	// stored with its record (codec.go, storedWithPending): its ack
	// deletes the record alone.
	pkeyNone pkeyState = iota
	// pkeyOnce: written once since it last did not exist (a first retry,
	// a replay, or an Enqueue of hookgate before one key per delivery):
	// a single delete removes it.
	pkeyOnce
	// pkeyRewritten: possibly written more than once: a plain delete.
	pkeyRewritten
)

// rewritten is the state of a p key after one more write.
func (p pkeyState) rewritten() pkeyState {
	if p == pkeyNone {
		return pkeyOnce
	}
	return pkeyRewritten
}

// maxAckRounds bounds how many commits one Ack makes for the acks that
// keep arriving while it commits; what is left goes with the next Ack,
// or at the latest with the store's next tick (health.go, watch).
const maxAckRounds = 4

// queueAck queues the deletes of an ack already applied in memory, and
// commits the queue unless another Ack is committing it already: that
// one takes this ack too. The Ack that commits yields first, so the
// workers already runnable (their answers came in together) queue theirs
// for the same commit, which then costs one trip through Pebble's commit
// pipeline for all of them, and whose sorted deletes walk the memtable's
// skip list forwards (appendAckDeletes). A lone ack yields to nobody and
// commits at once. It yields only with one P (GOMAXPROCS=1, a sidecar's
// usual core): with more, the workers queue their acks while it commits,
// and a yield would hand its P to Pebble's log writer, which another P
// runs otherwise (BenchmarkClaimAck).
//
// An Ack whose deletes another Ack commits returns nil: its delivery is
// gone from memory either way, and a commit that fails fails the store
// (health.go), which every later write then reports.
func (s *Store) queueAck(seq uint64, attempts int, pkey pkeyState) error {
	if f := s.failure.Load(); f != nil {
		return f // nothing is written any more
	}
	s.ackMu.Lock()
	s.acks = append(s.acks, ackedEntry{seq, attempts, pkey})
	lead := !s.ackLeader
	s.ackLeader = true
	s.ackMu.Unlock()
	if !lead {
		return nil
	}
	leading := true
	defer func() {
		// However this Ack leaves (an error, the rounds used up, a
		// panic), the next one must be able to lead, or no ack would be
		// committed before the next tick.
		if leading {
			s.ackMu.Lock()
			s.ackLeader = false
			s.ackMu.Unlock()
		}
	}()
	if s.oneP.Load() {
		// With more Ps the other workers run alongside and queue their
		// acks while this one commits; with one, only if it yields.
		runtime.Gosched()
	}
	for range maxAckRounds {
		if err := s.flushAcks(); err != nil {
			return err
		}
		s.ackMu.Lock()
		done := len(s.acks) == 0
		if done {
			// Before letting go of ackMu, so an ack queued next leads.
			s.ackLeader, leading = false, false
		}
		s.ackMu.Unlock()
		if done {
			return nil
		}
	}
	return nil
}

// flushAcks commits the queued acks' deletes in one batch; s.life held
// (shared, or exclusively by Close).
func (s *Store) flushAcks() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.flushAcksLocked()
}

// flushAcksLocked is flushAcks with s.flushMu held.
func (s *Store) flushAcksLocked() error {
	s.ackMu.Lock()
	acks := s.acks
	s.acks = s.ackSpare[:0]
	s.ackMu.Unlock()
	if len(acks) == 0 {
		s.ackSpare = acks
		return nil
	}
	b := s.db.NewBatch()
	appendAckDeletes(b, acks)
	err := s.commit(b, pebble.NoSync)
	s.ackSpare = acks[:0]
	return err
}

// appendAckDeletes sorts acks by sequence and adds their deletes to b:
// the records, then the pending states, then the attempts. In that order
// each insert into the memtable's skip list starts its search where the
// one before it ended, instead of at the top.
//
// The record (with its first pending state), a p key written once and
// each attempt are written exactly once, so they are removed with
// SingleDelete: when the delete meets the write it deletes (in the
// memtable, or later in a compaction), both disappear, where a plain
// delete leaves a tombstone that the flush writes to L0 and compactions
// carry down the levels. A delivery never retried has no p key, and its
// ack deletes the record alone. A p key rewritten by a second retry gets
// a plain Delete: a single delete cancels only the latest write and would
// let an older one come back. A replayed delivery's p key is written
// again after dead-lettering removed it with a plain Delete (dead.go,
// writeDead); Pebble allows a single delete of a key written once since
// a plain delete, so its ack may single-delete it.
func appendAckDeletes(b *pebble.Batch, acks []ackedEntry) {
	slices.SortFunc(acks, func(a, b ackedEntry) int { return cmp.Compare(a.seq, b.seq) })
	for _, a := range acks {
		dk := keyOf(kindRecord, a.seq)
		b.SingleDelete(dk[:], nil)
	}
	for _, a := range acks {
		pk := keyOf(kindPending, a.seq)
		switch a.pkey {
		case pkeyOnce:
			b.SingleDelete(pk[:], nil)
		case pkeyRewritten:
			b.Delete(pk[:], nil)
		}
	}
	for _, a := range acks {
		for n := 0; n < a.attempts; n++ {
			ak := attemptKeyOf(a.seq, n)
			b.SingleDelete(ak[:], nil)
		}
	}
}
