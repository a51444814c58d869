package queue

import "crypto/sha256"

// Ordered delivery (a target's order = "fifo"; RATIONALE.md "Sequences").
//
// The deliveries of a target that carry Delivery.Ordered form sequences,
// one per OrderKey, in ingest order. Only the head of a sequence is ever in
// the target's ready heap or leased; the others wait in a linked list
// behind it (entry.next) and are not seen by Claim at all. So Claim needs
// no change and costs the same, at most one delivery per key is ever
// leased, a head that is retried keeps its key waiting until it is
// delivered (Ack) or dead-lettered (Dead), and then, in drop, the next one
// becomes the head and goes into the heap.

// orderID names one sequence of a target: the first 16 bytes of the
// SHA-256 of its key. It is fixed-size, so a sequence costs the same
// memory and disk whatever the key, and the map lookup allocates nothing.
// Two keys with the same id would share one sequence: that only ever adds
// waiting, never reorders.
type orderID [16]byte

func orderIDOf(key []byte) orderID {
	sum := sha256.Sum256(key)
	return orderID(sum[:16])
}

// orderOf is d's ordering at Enqueue, where its place is its sequence
// number: ingest order.
func orderOf(ordered bool, key []byte, seq uint64) ordering {
	if !ordered {
		return ordering{}
	}
	return ordering{ordered: true, order: seq, id: orderIDOf(key)}
}

// fifoSeq is one sequence's pending deliveries, oldest (the head) first.
type fifoSeq struct {
	id         orderID
	head, tail *entry
}

// Positions of an entry outside its target's ready heap (entry.heapIdx).
const (
	leasedIdx  = -1 // being sent
	waitingIdx = -2 // in a sequence, behind its head
)

// join appends e to its sequence, o.id, of tq; the head goes into the
// ready heap unless held (reserve), any other waits. s.mu held (or at
// load).
func (s *Store) join(tq *targetQ, e *entry, o ordering) {
	e.order = o.order
	fs := tq.seqs[o.id]
	if fs == nil {
		if n := len(s.freeSeqs); n > 0 {
			fs = s.freeSeqs[n-1]
			s.freeSeqs = s.freeSeqs[:n-1]
		} else {
			fs = new(fifoSeq)
		}
		fs.id = o.id
		if tq.seqs == nil {
			tq.seqs = make(map[orderID]*fifoSeq)
		}
		tq.seqs[o.id] = fs
	}
	e.fs = fs
	if fs.tail == nil {
		fs.head, fs.tail = e, e
		if !e.held {
			tq.ready.push(e)
			return
		}
	} else {
		fs.tail.next = e
		fs.tail = e
	}
	e.heapIdx = waitingIdx
	tq.waiting++
}

// commitOrdered makes e, held by reserve, part of the queue now that its
// Enqueue committed: at the head of its sequence, it is ready. s.mu held.
func (s *Store) commitOrdered(e *entry) {
	e.held = false
	if e.fs.head == e {
		e.tq.waiting--
		e.tq.ready.push(e)
	}
}

// leave takes e, acked, dead or never committed, out of its sequence;
// when it was the head, the next one becomes the head and ready at its due
// time. s.mu held; e is out of the heap and the leases already.
func (s *Store) leave(e *entry) {
	fs, tq := e.fs, e.tq
	if e.heapIdx == waitingIdx {
		tq.waiting--
	}
	if fs.head != e {
		// Only a head is ever handed out, so only a head is acked or dead;
		// an Enqueue that failed takes its held entries out from anywhere.
		prev := fs.head
		for prev != nil && prev.next != e {
			prev = prev.next
		}
		if prev == nil {
			return
		}
		prev.next = e.next
		if fs.tail == e {
			fs.tail = prev
		}
		return
	}
	fs.head = e.next
	if fs.head == nil {
		fs.tail = nil
		delete(tq.seqs, fs.id)
		if len(s.freeSeqs) < 4096 {
			*fs = fifoSeq{}
			s.freeSeqs = append(s.freeSeqs, fs)
		}
		return
	}
	if !fs.head.held { // else commitOrdered makes it ready
		tq.waiting--
		tq.ready.push(fs.head)
	}
}

// ordering is e's, for rewriting its pending state.
func (e *entry) ordering() ordering {
	if e.fs == nil {
		return ordering{}
	}
	return ordering{ordered: true, order: e.order, id: e.fs.id}
}
