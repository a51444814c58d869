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

// countAttempts counts the records of a list; a corrupt tail is not
// counted.
func countAttempts(list []byte) int {
	n := 0
	for len(list) > 0 {
		l, k := binary.Uvarint(list)
		if k <= 0 || l > uint64(len(list)-k) {
			return n
		}
		list = list[k+int(l):]
		n++
	}
	return n
}

// decodeAttempts decodes a list, marking the last one dead (see above).
func decodeAttempts(list []byte) ([]delivery.Attempt, error) {
	var out []delivery.Attempt
	for len(list) > 0 {
		l, k := binary.Uvarint(list)
		if k <= 0 || l > uint64(len(list)-k) {
			return out, queue.ErrCorrupt
		}
		a, err := queue.DecodeAttempt(list[k : k+int(l)])
		if err != nil {
			return out, err
		}
		a.Outcome = delivery.AttemptRetry
		out = append(out, a)
		list = list[k+int(l):]
	}
	if len(out) > 0 {
		out[len(out)-1].Outcome = delivery.AttemptDead
	}
	return out, nil
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
