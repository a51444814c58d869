package natsq

import (
	"encoding/binary"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Attempts of one delivery are kept as one value: a list of records, each
// length-prefixed, appended to by every Retry. One value (not one key per
// attempt) lets Claim read them all with one Get, and only when the
// message was delivered before (its NumDelivered > 1): a first delivery
// costs no read.
//
//	list:    (uvarint len | attempt)*
//	attempt: 0x01 | at (varint) | duration (varint) | status (uvarint) | Error | Body
//
// The attempt is the Pebble store's attempt value (queue.AppendAttempt):
// one format for both engines. Outcome is not stored; as in the Pebble
// store every attempt of a dead letter reads back as
// delivery.AttemptRetry, the last as AttemptDead.
func appendAttempt(dst []byte, a *delivery.Attempt) []byte {
	rec := queue.AppendAttempt(make([]byte, 0, 32+len(a.Error)+min(len(a.Body), queue.MaxAttemptBody)), a)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	return append(dst, rec...)
}

// A retry also leaves its due time in the list, as a record of its own
// kind after the attempts (dueKind | due (varint)), so that Claim can put
// back a redelivery that comes before it: the NakWithDelay that should
// have held it may be lost with a connection, and the lease then brings it
// back after AckWait, which may be long before the target's Retry-After.
const dueKind = 0x7f

// records calls fn with each record of list; false if the list is
// corrupt.
func records(list []byte, fn func(rec []byte)) bool {
	for len(list) > 0 {
		l, k := binary.Uvarint(list)
		if k <= 0 || l == 0 || l > uint64(len(list)-k) {
			return false
		}
		fn(list[k : k+int(l)])
		list = list[k+int(l):]
	}
	return true
}

// appendRetry is list with a appended and due as its due time (the last
// retry's only).
func appendRetry(list []byte, a *delivery.Attempt, due int64) []byte {
	out := make([]byte, 0, len(list)+64+len(a.Error)+min(len(a.Body), queue.MaxAttemptBody))
	records(list, func(rec []byte) {
		if rec[0] != dueKind {
			out = binary.AppendUvarint(out, uint64(len(rec)))
			out = append(out, rec...)
		}
	})
	out = appendAttempt(out, a)
	rec := binary.AppendVarint([]byte{dueKind}, due)
	out = binary.AppendUvarint(out, uint64(len(rec)))
	return append(out, rec...)
}

// listDue is the due time the last retry left in list (unix ns); 0: none.
func listDue(list []byte) int64 {
	var due int64
	records(list, func(rec []byte) {
		if rec[0] == dueKind {
			due, _ = binary.Varint(rec[1:])
		}
	})
	return due
}

// countAttempts counts the attempts of a list; a corrupt tail is not
// counted.
func countAttempts(list []byte) int {
	n := 0
	records(list, func(rec []byte) {
		if rec[0] != dueKind {
			n++
		}
	})
	return n
}

// decodeAttempts decodes a list, marking the last one dead (see above).
func decodeAttempts(list []byte) ([]delivery.Attempt, error) {
	var out []delivery.Attempt
	var bad error
	ok := records(list, func(rec []byte) {
		if rec[0] == dueKind || bad != nil {
			return
		}
		a, err := queue.DecodeAttempt(rec)
		if err != nil {
			bad = err
			return
		}
		a.Outcome = delivery.AttemptRetry
		out = append(out, a)
	})
	if !ok {
		bad = queue.ErrCorrupt
	}
	if len(out) > 0 {
		out[len(out)-1].Outcome = delivery.AttemptDead
	}
	return out, bad
}

// reader reads varint fields; the first error sticks.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) field() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	return f
}
