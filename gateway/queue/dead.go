package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hookgate/hookgate/delivery"
)

// Dead records attempt a and moves the delivery to the dead letters, where
// it stays (with all its attempts) until replayed.
func (s *Store) Dead(ref Ref, a delivery.Attempt) error {
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
	seq, n, enq, size, tq, o := e.seq, e.attempts, e.enqueued, e.size, e.tq, e.ordering()
	staged, writing := e.staged, e.inGeneration()
	e.busy = true // as in retry: the entry stays until the write's outcome is known
	s.mu.Unlock()

	err = s.recordFirst(staged, writing) // the dead letter is made from its record
	if err == nil {
		err = s.writeDead(seq, n, enq, size, tq.name, o, &a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.busy = false
	if err != nil {
		// Still pending, on disk and here: it stays leased, and goes out
		// again when the lease ends, as if its worker had died.
		s.log.Error("queue: dead letter not recorded; the delivery is tried again when its lease ends", "ref", seq, "err", err)
		return fmt.Errorf("queue: dead %d: %w", seq, err)
	}
	s.drop(e) // the next in its sequence, if any, goes now
	// Counted once stored: a dead letter the figures show can be listed
	// and replayed (counted before the commit, a replay of a route could
	// miss the dead letter the figures had just counted).
	tq.dead++
	return nil
}

func (s *Store) writeDead(seq uint64, n int, enq, size int64, target string, o ordering, a *delivery.Attempt) error {
	dk := keyOf(kindRecord, seq)
	v, closer, err := s.db.Get(dk[:])
	if err != nil {
		return err
	}
	id, route, _, err := storedHead(v)
	if err != nil {
		closer.Close()
		return err
	}
	b := s.db.NewBatch()
	pk, xk, ak := keyOf(kindPending, seq), keyOf(kindDead, seq), attemptKeyOf(seq, n)
	b.Delete(pk[:], nil)
	di := deadInfo{target: []byte(target), route: route, enqueued: enq, deadAt: time.Now().UnixNano(), size: size, attempts: n + 1, ord: o}
	b.Set(xk[:], appendDead(nil, &di), nil)
	b.Set(idKey(id), binary.BigEndian.AppendUint64(nil, seq), nil)
	b.Set(ak[:], appendAttempt(nil, a), nil)
	closer.Close()
	return s.commit(b, s.syncOpt)
}

func idKey(id []byte) []byte {
	return append([]byte{kindID}, id...)
}

// DeadList returns up to limit dead letters matching f, oldest first,
// starting after cursor ("" for the start). The returned cursor is "" when
// there are no more.
func (s *Store) DeadList(f Filter, cursor string, limit int) ([]DeadLetter, string, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return nil, "", ErrClosed
	}
	start := uint64(0)
	if cursor != "" {
		c, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%w %q: pass the next_cursor of a previous page", ErrBadCursor, cursor)
		}
		start = c + 1
	}
	if limit <= 0 {
		limit = 100
	}
	lo := keyOf(kindDead, start)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo[:], UpperBound: []byte{kindDead + 1}})
	if err != nil {
		return nil, "", fmt.Errorf("queue: dead letters: %w", err)
	}
	defer it.Close()
	var out []DeadLetter
	next := ""
	for it.First(); it.Valid(); it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		di, err := decodeDead(it.Value())
		if err != nil {
			return nil, "", fmt.Errorf("queue: dead letter %d: %w", seq, err)
		}
		if !f.match(di.target, di.route) {
			continue
		}
		if len(out) == limit {
			next = strconv.FormatUint(uint64(out[len(out)-1].Ref), 10)
			break
		}
		dl := DeadLetter{Ref: Ref(seq), EnqueuedAt: unixTime(di.enqueued), DeadAt: unixTime(di.deadAt)}
		if err := s.readRecord(seq, &dl.Delivery, make([]byte, 9)); err != nil {
			return nil, "", fmt.Errorf("queue: dead letters: %w", err)
		}
		if dl.Attempts, err = s.attempts(seq, di.attempts); err != nil {
			return nil, "", fmt.Errorf("queue: dead letter %d: %w", seq, err)
		}
		out = append(out, dl)
	}
	return out, next, nil
}

// attempts reads a dead letter's n attempts. Their outcome is not stored
// but known: every one but the last was retried, the last one made it dead.
func (s *Store) attempts(seq uint64, n int) ([]delivery.Attempt, error) {
	out := make([]delivery.Attempt, 0, n)
	for i := 0; i < n; i++ {
		k := attemptKeyOf(seq, i)
		v, closer, err := s.db.Get(k[:])
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a, err := decodeAttempt(v)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("attempt %d: %w", i, err)
		}
		a.Outcome = delivery.AttemptRetry
		out = append(out, a)
	}
	if len(out) > 0 {
		out[len(out)-1].Outcome = delivery.AttemptDead
	}
	return out, nil
}

// DeadCount counts the dead letters matching f (for a progress bar's
// total before ReplayAll).
func (s *Store) DeadCount(f Filter) (int, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if f == (Filter{}) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, tq := range s.targets {
			n += tq.dead
		}
		return n, nil
	}
	n := 0
	err := s.scan(kindDead, func(seq uint64, v []byte) error {
		di, err := decodeDead(v)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		if f.match(di.target, di.route) {
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("queue: count dead letters: %w", err)
	}
	return n, nil
}

// Replay moves the dead letter whose delivery id is id back to ready, due
// now, with its attempts cleared.
func (s *Store) Replay(id string) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	v, closer, err := s.db.Get(idKey([]byte(id)))
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("queue: replay %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("queue: replay %q: %w", id, err)
	}
	if len(v) != 8 {
		closer.Close()
		return fmt.Errorf("queue: replay %q: %w", id, ErrCorrupt)
	}
	seq := binary.BigEndian.Uint64(v)
	closer.Close()
	n, err := s.replay([]uint64{seq})
	if err != nil {
		return fmt.Errorf("queue: replay %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("queue: replay %q: %w", id, ErrNotFound)
	}
	return nil
}

// ReplayAll replays the dead letters matching f, oldest first, at most limit
// of them (limit <= 0: all), in chunks; progress (if not nil) is called after
// each chunk with the number replayed so far.
func (s *Store) ReplayAll(f Filter, limit int, progress func(done int)) (int, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	const chunk = 256
	done := 0
	start := uint64(0)
	seqs := make([]uint64, 0, chunk)
	for {
		seqs = seqs[:0]
		lo := keyOf(kindDead, start)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo[:], UpperBound: []byte{kindDead + 1}})
		if err != nil {
			return done, fmt.Errorf("queue: replay: %w", err)
		}
		last := false
		for it.First(); ; it.Next() {
			if !it.Valid() {
				last = true
				break
			}
			if len(seqs) == chunk || (limit > 0 && done+len(seqs) == limit) {
				break
			}
			seq := binary.BigEndian.Uint64(it.Key()[1:])
			start = seq + 1
			di, err := decodeDead(it.Value())
			if err != nil {
				it.Close()
				return done, fmt.Errorf("queue: replay: dead letter %d: %w", seq, err)
			}
			if f.match(di.target, di.route) {
				seqs = append(seqs, seq)
			}
		}
		it.Close()
		n, err := s.replay(seqs)
		done += n
		if err != nil {
			return done, fmt.Errorf("queue: replay: %w", err)
		}
		if progress != nil && n > 0 {
			progress(done)
		}
		if last || (limit > 0 && done >= limit) {
			return done, nil
		}
	}
}

// replay moves the dead letters seqs back to ready in one batch; s.life
// (shared) and s.replayMu held. A dead letter of a sequence goes to the
// back of its sequence: it gets a fresh order number, above every one
// given so far, as if enqueued now (its sequence number stays its key).
func (s *Store) replay(seqs []uint64) (int, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	now := time.Now().UnixNano()
	b := s.db.NewBatch()
	committed := false // s.commit closes b
	defer func() {
		if !committed {
			b.Close()
		}
	}()
	type moved struct {
		seq    uint64
		target string
		size   int64
		ord    ordering
	}
	ms := make([]moved, 0, len(seqs))
	for _, seq := range seqs {
		xk := keyOf(kindDead, seq)
		v, closer, err := s.db.Get(xk[:])
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		di, err := decodeDead(v)
		if err != nil {
			closer.Close()
			return 0, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		target := string(di.target)
		closer.Close()
		dk := keyOf(kindRecord, seq)
		rv, rcloser, err := s.db.Get(dk[:])
		if err != nil {
			return 0, fmt.Errorf("record %d: %w", seq, err)
		}
		if id, _, _, err := storedHead(rv); err == nil {
			b.Delete(idKey(id), nil)
		}
		rcloser.Close()
		b.Delete(xk[:], nil)
		for n := 0; n < di.attempts; n++ {
			ak := attemptKeyOf(seq, n)
			b.Delete(ak[:], nil)
		}
		pk := keyOf(kindPending, seq)
		o := di.ord
		if o.ordered {
			o.order = s.seq.Add(1)
		}
		b.Set(pk[:], appendPending(nil, target, now, now, di.size, 0, &o), nil)
		ms = append(ms, moved{seq, target, di.size, o})
	}
	committed = true
	if err := s.commit(b, s.syncOpt); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		tq := s.target(m.target)
		tq.dead--
		e := s.newEntry()
		// Its p key was written once since writeDead deleted it.
		*e = entry{seq: m.seq, due: now, enqueued: now, size: m.size, tq: tq, pkey: pkeyOnce}
		s.entries[m.seq] = e
		if m.ord.ordered {
			s.join(tq, e, m.ord)
		} else {
			tq.ready.push(e)
		}
		tq.bytes += m.size
		s.depth++
		s.bytes += m.size
	}
	return len(ms), nil
}
