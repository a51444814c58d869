package queue

import (
	"sync"

	"github.com/hookgate/hookgate/delivery"
)

// recent keeps the encoded records of the latest enqueued deliveries in a
// ring of fixed size, so that a claim made soon after the enqueue (nearly
// every claim, while targets keep up) decodes the record from memory
// instead of reading it back from Pebble. Under the load harness's async
// scenario that read was 2.0 µs of an event's 74 µs of CPU (a Get walks
// the memtable's skiplist through cold cache lines).
//
// It needs no invalidation: a record is written once, at Enqueue, under a
// sequence number never used again, and is never changed afterwards (a
// retry or a replay rewrites the pending state, not the record). A record
// the ring no longer holds (overwritten by newer ones, or too large to
// keep) is read from Pebble as before, so the ring's size bounds memory,
// never correctness. A sequence is only ever claimed once its Enqueue has
// committed, so what put stored before the commit is never served for a
// write that failed.
//
// With sync "batch" a claim of a staged delivery reads its record from
// its generation instead (stage.go), and the ring gets the records still
// pending when their generation is written: a backlog's.
type recent struct {
	mu    sync.Mutex
	ring  []byte
	pos   uint64 // where the next record goes, counted in bytes since Open: it only grows
	slots []slot // by sequence modulo their number
	hits  uint64 // claims served from the ring (tests)
}

// slot says where the record of one sequence lies in the ring.
type slot struct {
	seq1 uint64 // the sequence plus one, so the zero slot matches none
	at   uint64 // its first byte, as pos counts
	n    int
}

// Sized for a few seconds of claims behind enqueues at the harness's
// rates (about 10k events/s of 2 KB): 2 MiB of records and 4,096 slots,
// allocated once at Open. A record of more than an eighth of the ring
// (recentMax) is not kept, so one large event cannot push out hundreds of
// small ones.
const (
	recentBytes = 2 << 20
	recentSlots = 4096
	recentMax   = recentBytes / 8
)

func newRecent() *recent {
	return &recent{ring: make([]byte, recentBytes), slots: make([]slot, recentSlots)}
}

// put keeps rec, the encoded record of seq. Callers hold r.mu.
func (r *recent) put(seq uint64, rec []byte) {
	sl := &r.slots[seq%uint64(len(r.slots))]
	size := uint64(len(r.ring))
	n := uint64(len(rec))
	if n == 0 || n > size/8 {
		*sl = slot{}
		return
	}
	if off := r.pos % size; off+n > size {
		r.pos += size - off // a record never wraps: skip to the ring's start
	}
	copy(r.ring[r.pos%size:], rec)
	*sl = slot{seq1: seq + 1, at: r.pos, n: len(rec)}
	r.pos += n
}

// get decodes the record of seq into d and reports true when the ring
// still holds it; else it returns false and leaves d alone.
func (r *recent) get(seq uint64, d *delivery.Delivery, in interner) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.lookup(seq)
	if !ok {
		return false, nil
	}
	r.hits++
	return true, decodeRecord(rec, d, in)
}

// lookup returns the record of seq while the ring holds it. Callers hold
// r.mu.
func (r *recent) lookup(seq uint64) ([]byte, bool) {
	sl := r.slots[seq%uint64(len(r.slots))]
	size := uint64(len(r.ring))
	// Intact while nothing was written a whole ring past its first byte
	// (skips count as writes here, which only errs towards a miss).
	if sl.seq1 != seq+1 || r.pos-sl.at > size {
		return nil, false
	}
	off := sl.at % size
	return r.ring[off : off+uint64(sl.n)], true
}
