package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hookgate/hookgate/delivery"
)

// Claim leases up to max ready deliveries of target (due at or before
// now), appending them to dst[:0] and reusing its elements' buffers.
func (s *Store) Claim(dst []Leased, target string, now time.Time, max int, leaseFor time.Duration) ([]Leased, error) {
	dst = dst[:0]
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return dst, ErrClosed
	}
	nowNs := now.UnixNano()
	s.mu.Lock()
	tq := s.targets[target]
	if tq == nil {
		s.mu.Unlock()
		return dst, nil
	}
	if len(tq.leased) > 0 && tq.firstLeaseEnd <= nowNs {
		// Some lease may have ended: make those ready again, and find
		// when the next one ends.
		first := int64(math.MaxInt64)
		for seq, e := range tq.leased {
			// One whose Retry is being written stays: the Retry makes it
			// ready when it commits.
			if e.leaseEnd <= nowNs && !e.busy {
				delete(tq.leased, seq)
				tq.ready.push(e)
			} else {
				first = min(first, e.leaseEnd)
			}
		}
		tq.firstLeaseEnd = first
	}
	for len(dst) < max && len(tq.ready) > 0 && tq.ready[0].due <= nowNs {
		e := tq.ready.pop()
		e.leaseEnd = nowNs + int64(leaseFor)
		if e.claim != 0 {
			delete(s.claims, Ref(e.claim))
		}
		s.claimed++
		e.claim = s.claimed
		s.claims[Ref(e.claim)] = e
		if len(tq.leased) == 0 || e.leaseEnd < tq.firstLeaseEnd {
			tq.firstLeaseEnd = e.leaseEnd
		}
		tq.leased[e.seq] = e
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, Leased{})
		}
		l := &dst[len(dst)-1]
		l.Ref, l.seq, l.Attempts, l.EnqueuedAt = Ref(e.claim), e.seq, e.attempts, e.enqueued
		// Read from its generation while that holds it: staged, or
		// being written (the write is not visible yet), until the
		// generation is emptied after the write (stage.go).
		if e.stGen != nil && !e.inGeneration() {
			e.stRec, e.stGen = nil, nil // written: let go of the buffer
		}
		l.stRec, l.stGen, l.stEpoch = e.stRec, e.stGen, e.stEpoch
	}
	s.mu.Unlock()
	return s.readClaimed(dst, now), nil
}

// readClaimed decodes the record of each delivery in dst and returns dst
// without those whose record could not be read (unreadable deals with
// them). A record still in the ring of recent ones comes from there; the
// rest come from Pebble, through one iterator for the claim once a miss
// is not the claim's last delivery.
//
// Why an iterator: behind a backlog larger than the ring, as after a
// target's outage or when deliveries fall behind ingest, the records
// have been flushed to sstables, and a Get looks up an index block and a
// data block in every level that spans its key, each a read from the
// block cache or the file. A claim's deliveries are mostly consecutive
// sequences, whose records lie side by side, so an iterator seeking
// forward from one to the next steps through blocks it already holds.
// BenchmarkClaimBacklog (80 MB of backlog in sstables, claims of 16,
// medians of 5 interleaved runs): 16.6 µs a delivery with a Get each,
// 7.5 µs through the iterator, 5.4 µs with the larger blocks of
// tableBlockSize.
func (s *Store) readClaimed(dst []Leased, now time.Time) []Leased {
	var it *pebble.Iterator
	n := 0
	for i := range dst {
		l := &dst[i]
		var err error
		ok := false
		if l.stGen != nil {
			ok, err = s.stage.get(l.stGen, l.stEpoch, l.stRec, &l.Delivery, s)
			l.stRec, l.stGen = nil, nil
		}
		if !ok {
			ok, err = s.recent.get(l.seq, &l.Delivery, s)
		}
		switch {
		case ok: // read (or not decodable: err)
		case it == nil && i == len(dst)-1:
			err = s.getRecord(l.seq, &l.Delivery, l.key[:])
		default:
			if it == nil {
				// Without bounds: each seek is checked against its key,
				// and bounds would have to outlive the iterator on the
				// heap.
				if it, err = s.db.NewIter(nil); err != nil {
					it = nil
				}
			}
			if it != nil {
				err = s.seekRecord(it, l.seq, &l.Delivery, l.key[:])
			}
		}
		if err != nil {
			s.unreadable(l.Ref, l.seq, now, fmt.Errorf("record %d: %w", l.seq, err))
			continue
		}
		if n != i { // swap, so the skipped element's buffers stay reusable
			dst[n], dst[i] = dst[i], dst[n]
		}
		n++
	}
	if it != nil {
		// A read error would have come back from the seek that met it.
		_ = it.Close()
	}
	return dst[:n]
}

// unreadable deals with a claimed delivery whose record cannot be read
// (s.life held shared): a missing one (its pending key outlived it) is
// forgotten, a corrupt one is parked for an hour with the error recorded,
// so a worker never spins on it.
func (s *Store) unreadable(ref Ref, seq uint64, now time.Time, cause error) {
	s.log.Error("queue: delivery record unreadable", "ref", seq, "err", cause)
	if !errors.Is(cause, pebble.ErrNotFound) {
		s.retry(ref, now.Add(time.Hour), delivery.Attempt{At: now, Error: cause.Error()})
		return
	}
	s.mu.Lock()
	if e := s.entries[seq]; e != nil {
		s.drop(e)
	}
	s.mu.Unlock()
	pk := keyOf(kindPending, seq)
	b := s.db.NewBatch()
	b.Delete(pk[:], nil)
	s.commit(b, pebble.NoSync)
}

// readRecord decodes record seq into d; kbuf (9 bytes) holds the key, so
// a caller with a buffer already on the heap makes the lookup allocate
// nothing.
func (s *Store) readRecord(seq uint64, d *delivery.Delivery, kbuf []byte) error {
	ok, err := s.recent.get(seq, d, s)
	if !ok {
		err = s.getRecord(seq, d, kbuf)
	}
	if err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	return nil
}

// getRecord reads record seq from Pebble with a Get and decodes it into
// d; kbuf as readRecord's.
func (s *Store) getRecord(seq uint64, d *delivery.Delivery, kbuf []byte) error {
	kbuf[0] = kindRecord
	binary.BigEndian.PutUint64(kbuf[1:9], seq)
	v, closer, err := s.db.Get(kbuf[:9])
	if err != nil {
		return err
	}
	err = decodeStored(v, d, s)
	closer.Close()
	return err
}

// seekRecord reads record seq from Pebble through it and decodes it into
// d; kbuf as readRecord's. A missing record is pebble.ErrNotFound, as with a
// Get. Seeking forward from where the last seek ended, Pebble steps on
// from there (its TrySeekUsingNext) instead of seeking from the top.
func (s *Store) seekRecord(it *pebble.Iterator, seq uint64, d *delivery.Delivery, kbuf []byte) error {
	kbuf[0] = kindRecord
	binary.BigEndian.PutUint64(kbuf[1:9], seq)
	if !it.SeekGE(kbuf[:9]) {
		if err := it.Error(); err != nil {
			return err
		}
		return pebble.ErrNotFound
	}
	if !bytes.Equal(it.Key(), kbuf[:9]) {
		return pebble.ErrNotFound
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	return decodeStored(v, d, s)
}

// intern implements interner: route and target names are few, so after
// the first sighting they cost no allocation.
func (s *Store) intern(b []byte) string {
	s.namesMu.RLock()
	name, ok := s.names[string(b)]
	s.namesMu.RUnlock()
	if ok {
		return name
	}
	name = string(b)
	s.namesMu.Lock()
	if len(s.names) < 4096 {
		s.names[name] = name
	}
	s.namesMu.Unlock()
	return name
}

// SyncsEachCommit says whether an Enqueue returns only once its commit is
// on disk (sync "always"). Its callers then wait for the disk already,
// and the dispatcher does not make them wait for a backlog as well
// (dispatch, yield.go).
func (s *Store) SyncsEachCommit() bool { return s.syncOpt == pebble.Sync }

// NextDue reports the due time of target's earliest ready delivery.
func (s *Store) NextDue(target string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tq := s.targets[target]
	if tq == nil || len(tq.ready) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, tq.ready[0].due), true
}

// Ready is how many of target's deliveries wait unclaimed: due now or
// scheduled for later (a retry's backoff), not those leased or waiting
// behind the head of their sequence. The dispatcher reads it on each
// Enqueue to see a backlog building (dispatch, yield.go).
func (s *Store) Ready(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tq := s.targets[target]; tq != nil {
		return len(tq.ready)
	}
	return 0
}

// lookup returns the pending entry of ref; s.mu held.
//
// A Ref names one claim, not the delivery: each Claim hands out a new
// one. So a worker whose lease ran out (a paused process, a stalled
// machine) and whose delivery another worker claimed since gets
// ErrNotLeased, instead of removing or rescheduling the delivery while
// the other sends it. A holder whose lease ran out with nobody claiming
// the delivery since is still its latest claimant, and is answered: its
// Ack saves a second send.
//
// An entry that a Retry is still writing is refused too: only the holder
// of an expired lease can get here, and refusing it keeps the store from
// resurrecting a delivery that its Retry and another holder's Ack both
// touched.
func (s *Store) lookup(ref Ref) (*entry, error) {
	e := s.claims[ref]
	if e == nil || e.busy {
		return nil, fmt.Errorf("queue: claim %d: %w", ref, ErrNotLeased)
	}
	return e, nil
}

// Ack removes a sent delivery. It does not wait for its deletes to be
// written: they are committed with the acks around it (acks.go), and a
// crash before that can only make the delivery be sent again.
func (s *Store) Ack(ref Ref) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.mu.Lock()
	e, err := s.lookup(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	seq, attempts, pkey, staged := e.seq, e.attempts, e.pkey, e.staged
	s.drop(e)
	s.mu.Unlock()
	if staged {
		return nil // never written: nothing to delete
	}

	if err := s.queueAck(seq, attempts, pkey); err != nil {
		return fmt.Errorf("queue: ack %d: %w", seq, err)
	}
	return nil
}

// Retry records attempt a and makes the delivery ready again at due.
func (s *Store) Retry(ref Ref, due time.Time, a delivery.Attempt) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.retry(ref, due, a)
}

// retry is Retry with s.life already held (shared).
func (s *Store) retry(ref Ref, due time.Time, a delivery.Attempt) error {
	s.mu.Lock()
	e, err := s.lookup(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	seq, n, enq, size, name, o := e.seq, e.attempts, e.enqueued, e.size, e.tq.name, e.ordering()
	staged, writing := e.staged, e.inGeneration()
	e.busy = true
	s.mu.Unlock()

	// Its record first: a pending state without one would be lost.
	if err := s.recordFirst(staged, writing); err != nil {
		s.mu.Lock()
		e.busy = false
		s.mu.Unlock()
		return fmt.Errorf("queue: retry %d: %w", seq, err)
	}
	b := s.db.NewBatch()
	pk, ak := keyOf(kindPending, seq), attemptKeyOf(seq, n)
	b.Set(pk[:], appendPending(nil, name, due.UnixNano(), enq, size, n+1, &o), nil)
	b.Set(ak[:], appendAttempt(nil, &a), nil)
	err = s.commit(b, pebble.NoSync)

	s.mu.Lock()
	defer s.mu.Unlock()
	e.busy = false
	if err != nil {
		return fmt.Errorf("queue: retry %d: %w", seq, err)
	}
	e.attempts = n + 1
	e.pkey = e.pkey.rewritten()
	e.due = due.UnixNano()
	// Still the head of its sequence, if it is in one: its key waits.
	if e.heapIdx == leasedIdx {
		delete(e.tq.leased, seq)
		e.tq.ready.push(e)
	} else {
		e.tq.ready.fix(e)
	}
	return nil
}

// Release ends a lease without an attempt: the delivery is ready again.
func (s *Store) Release(ref Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if e.heapIdx == leasedIdx {
		delete(e.tq.leased, e.seq)
		e.tq.ready.push(e)
	}
	return nil
}
