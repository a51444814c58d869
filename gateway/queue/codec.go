package queue

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/hookgate/hookgate/delivery"
)

// The record format is versioned by its first byte so a later hookgate can
// read what an earlier one wrote. Every field is length-prefixed with a
// uvarint; the body is last and also length-prefixed, so a truncated or
// padded record is detected rather than misread.
//
//	v1: 0x01 | ID | EventID | Route | Target | Method | Path |
//	    nQuery (k v)* | nHeaders (k v)* | NotBefore (varint) | Body
const recordV1 = 1

// ErrCorrupt is wrapped by decode errors: the stored bytes are not a record
// this version understands.
var ErrCorrupt = errors.New("queue: corrupt record")

// maxFields bounds header and query counts so a corrupt count cannot make
// the decoder allocate gigabytes.
const maxFields = 1 << 16

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

func bytesLen(n int) int { return uvarintLen(uint64(n)) + n }

// recordLen is the exact size encodeRecord writes, so Enqueue can reserve
// the space inside the pebble batch and encode in place.
func recordLen(d *delivery.Delivery) int {
	n := 1 + bytesLen(len(d.ID)) + bytesLen(len(d.EventID)) + bytesLen(len(d.Route)) +
		bytesLen(len(d.Target)) + bytesLen(len(d.Method)) + bytesLen(len(d.Path))
	n += uvarintLen(uint64(len(d.Query)))
	for i := range d.Query {
		n += bytesLen(len(d.Query[i].Key)) + bytesLen(len(d.Query[i].Value))
	}
	n += uvarintLen(uint64(len(d.Headers)))
	for i := range d.Headers {
		n += bytesLen(len(d.Headers[i].Key)) + bytesLen(len(d.Headers[i].Value))
	}
	n += varintLen(d.NotBefore)
	n += bytesLen(len(d.Body))
	return n
}

// encodeRecord writes d into dst, which must be exactly recordLen(d) long.
func encodeRecord(dst []byte, d *delivery.Delivery) {
	dst[0] = recordV1
	p := 1
	p = putBytes(dst, p, d.ID)
	p = putBytes(dst, p, d.EventID)
	p = putString(dst, p, d.Route)
	p = putString(dst, p, d.Target)
	p = putBytes(dst, p, d.Method)
	p = putBytes(dst, p, d.Path)
	p += binary.PutUvarint(dst[p:], uint64(len(d.Query)))
	for i := range d.Query {
		p = putBytes(dst, p, d.Query[i].Key)
		p = putBytes(dst, p, d.Query[i].Value)
	}
	p += binary.PutUvarint(dst[p:], uint64(len(d.Headers)))
	for i := range d.Headers {
		p = putBytes(dst, p, d.Headers[i].Key)
		p = putBytes(dst, p, d.Headers[i].Value)
	}
	p += binary.PutVarint(dst[p:], d.NotBefore)
	putBytes(dst, p, d.Body)
}

// AppendRecord appends the encoding of d to dst (for tests and tools; the
// store encodes in place).
func AppendRecord(dst []byte, d *delivery.Delivery) []byte {
	n := recordLen(d)
	start := len(dst)
	if cap(dst)-start < n {
		grown := make([]byte, start, start+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+n]
	encodeRecord(dst[start:], d)
	return dst
}

func putBytes(dst []byte, p int, b []byte) int {
	p += binary.PutUvarint(dst[p:], uint64(len(b)))
	return p + copy(dst[p:], b)
}

func putString(dst []byte, p int, s string) int {
	p += binary.PutUvarint(dst[p:], uint64(len(s)))
	return p + copy(dst[p:], s)
}

// decoder reads fields of a record; the first error sticks.
type decoder struct {
	b   []byte
	err bool
}

func (r *decoder) uvarint() uint64 {
	if r.err {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *decoder) varint() int64 {
	if r.err {
		return 0
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return x
}

// field returns the next length-prefixed field, aliasing the input.
func (r *decoder) field() []byte {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	return f
}

func (r *decoder) kvs(dst []delivery.KV) []delivery.KV {
	n := r.uvarint()
	// Each KV takes at least two bytes, which bounds n by the input.
	if r.err || n > maxFields || n*2 > uint64(len(r.b)) {
		r.err = true
		return dst[:0]
	}
	dst = dst[:0]
	for i := 0; i < int(n) && !r.err; i++ {
		k := r.field()
		v := r.field()
		dst = delivery.Append(dst, k, v)
	}
	return dst
}

// interner turns route and target names into strings without allocating
// once a name has been seen; names are few (they come from the config).
type interner interface {
	intern(b []byte) string
}

// DecodeRecord decodes a record into d, reusing d's buffers. Nothing in d
// aliases src.
func DecodeRecord(src []byte, d *delivery.Delivery) error {
	return decodeRecord(src, d, plainInterner{})
}

type plainInterner struct{}

func (plainInterner) intern(b []byte) string { return string(b) }

func decodeRecord(src []byte, d *delivery.Delivery, in interner) error {
	if len(src) == 0 || src[0] != recordV1 {
		return ErrCorrupt
	}
	r := decoder{b: src[1:]}
	d.ID = append(d.ID[:0], r.field()...)
	d.EventID = append(d.EventID[:0], r.field()...)
	route := r.field()
	target := r.field()
	d.Method = append(d.Method[:0], r.field()...)
	d.Path = append(d.Path[:0], r.field()...)
	d.Query = r.kvs(d.Query)
	d.Headers = r.kvs(d.Headers)
	d.NotBefore = r.varint()
	d.Body = append(d.Body[:0], r.field()...)
	if r.err || len(r.b) != 0 {
		return ErrCorrupt
	}
	d.Route = in.intern(route)
	d.Target = in.intern(target)
	return nil
}

// A delivery's record as stored under its d key: its first pending
// state, then the record. One key per delivery, where a record and a p key
// were two (RATIONALE.md, "One key per delivery"): a delivery acked
// without a retry, nearly every one, then costs one memtable insert at
// Enqueue and one single delete at its ack. A retry or a replay writes the
// p key, which from then on says where the delivery is.
//
//	0x80 | len (uvarint) | pending (appendPending's form) | record
//
// A value that starts with a record version (0x01) is a record stored on
// its own, as hookgate wrote them before: its pending state is its p key,
// if it has one.
const storedWithPending = 0x80

// storedLen is the size of a stored value with a pending state of pl
// bytes and a record of rl bytes.
func storedLen(pl, rl int) int { return 1 + uvarintLen(uint64(pl)) + pl + rl }

// putStoredHead writes the stored value's head into dst, whose length is
// storedLen(pl, rl), and returns where the pending state (pl bytes) and
// then the record start.
func putStoredHead(dst []byte, pl int) int {
	dst[0] = storedWithPending
	return 1 + binary.PutUvarint(dst[1:], uint64(pl))
}

// splitStored returns the record of a stored value and its pending state
// (nil for a record stored on its own), aliasing v.
func splitStored(v []byte) (rec, pend []byte, err error) {
	if len(v) == 0 || v[0] != storedWithPending {
		return v, nil, nil
	}
	n, k := binary.Uvarint(v[1:])
	if k <= 0 || n > uint64(len(v)-1-k) {
		return nil, nil, ErrCorrupt
	}
	p := 1 + k
	return v[p+int(n):], v[p : p+int(n)], nil
}

// decodeStored decodes the record of stored value v into d.
func decodeStored(v []byte, d *delivery.Delivery, in interner) error {
	rec, _, err := splitStored(v)
	if err != nil {
		return err
	}
	return decodeRecord(rec, d, in)
}

// storedHead is recordHead for a stored value (splitStored).
func storedHead(v []byte) (id, route, target []byte, err error) {
	rec, _, err := splitStored(v)
	if err != nil {
		return nil, nil, nil, err
	}
	return recordHead(rec)
}

// recordHead reads only the id, route and target of a record, aliasing src.
func recordHead(src []byte) (id, route, target []byte, err error) {
	if len(src) == 0 || src[0] != recordV1 {
		return nil, nil, nil, ErrCorrupt
	}
	r := decoder{b: src[1:]}
	id = r.field()
	r.field() // event id
	route = r.field()
	target = r.field()
	if r.err {
		return nil, nil, nil, ErrCorrupt
	}
	return id, route, target, nil
}

// pending is the small per-delivery state the store rebuilds its memory
// from at Open, kept apart from the record so a retry rewrites a few bytes
// rather than the body. A delivery in a sequence (Delivery.Ordered) has
// the v2 form, which adds its place in the sequence and the sequence's id;
// every other delivery keeps v1, byte for byte.
//
//	v1: 0x01 | Target | due (varint) | enqueued (varint) | size (uvarint) | attempts (uvarint)
//	v2: 0x02 | Target | due (varint) | enqueued (varint) | size (uvarint) | attempts (uvarint) |
//	    order (uvarint) | sequence id (16 bytes)
type pending struct {
	target   []byte
	due      int64
	enqueued int64
	size     int64
	attempts int
	ord      ordering
}

// ordering is a delivery's place in its target's sequences: none (not
// Ordered), or sequence id and position (fifo.go).
type ordering struct {
	ordered bool
	order   uint64 // ingest order: the sequence number at Enqueue, a fresh one at replay
	id      orderID
}

const pendingV2 = 2

func pendingLen(target string, due, enq, size int64, attempts int, o *ordering) int {
	n := 1 + bytesLen(len(target)) + varintLen(due) + varintLen(enq) +
		uvarintLen(uint64(size)) + uvarintLen(uint64(attempts))
	if o.ordered {
		n += uvarintLen(o.order) + len(o.id)
	}
	return n
}

func appendPending(dst []byte, target string, due, enq, size int64, attempts int, o *ordering) []byte {
	if o.ordered {
		dst = append(dst, pendingV2)
	} else {
		dst = append(dst, recordV1)
	}
	dst = binary.AppendUvarint(dst, uint64(len(target)))
	dst = append(dst, target...)
	dst = binary.AppendVarint(dst, due)
	dst = binary.AppendVarint(dst, enq)
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = binary.AppendUvarint(dst, uint64(attempts))
	if o.ordered {
		dst = binary.AppendUvarint(dst, o.order)
		dst = append(dst, o.id[:]...)
	}
	return dst
}

func decodePending(src []byte) (pending, error) {
	if len(src) == 0 || (src[0] != recordV1 && src[0] != pendingV2) {
		return pending{}, ErrCorrupt
	}
	r := decoder{b: src[1:]}
	p := pending{target: r.field(), due: r.varint(), enqueued: r.varint()}
	size := r.uvarint()
	attempts := r.uvarint()
	if src[0] == pendingV2 {
		p.ord = r.ordering()
	}
	if r.err || len(r.b) != 0 || size > math.MaxInt64 || attempts > math.MaxInt32 {
		return pending{}, ErrCorrupt
	}
	p.size, p.attempts = int64(size), int(attempts)
	return p, nil
}

// ordering reads the order and sequence id of a v2 pending or dead state.
func (r *decoder) ordering() ordering {
	o := ordering{ordered: true, order: r.uvarint()}
	if r.err || len(r.b) < len(o.id) {
		r.err = true
		return ordering{}
	}
	r.b = r.b[copy(o.id[:], r.b):]
	return o
}

// deadInfo is the value of a dead-letter index key. v2 is a dead letter
// of a sequence: its sequence id, so a replay puts it back in that
// sequence (at the back).
//
//	v1: 0x01 | Target | Route | enqueued (varint) | dead at (varint) | size (uvarint) | attempts (uvarint)
//	v2: 0x02 | the same | order (uvarint) | sequence id (16 bytes)
type deadInfo struct {
	target, route    []byte
	enqueued, deadAt int64
	size             int64
	attempts         int
	ord              ordering
}

func appendDead(dst []byte, di *deadInfo) []byte {
	if di.ord.ordered {
		dst = append(dst, pendingV2)
	} else {
		dst = append(dst, recordV1)
	}
	dst = binary.AppendUvarint(dst, uint64(len(di.target)))
	dst = append(dst, di.target...)
	dst = binary.AppendUvarint(dst, uint64(len(di.route)))
	dst = append(dst, di.route...)
	dst = binary.AppendVarint(dst, di.enqueued)
	dst = binary.AppendVarint(dst, di.deadAt)
	dst = binary.AppendUvarint(dst, uint64(di.size))
	dst = binary.AppendUvarint(dst, uint64(di.attempts))
	if di.ord.ordered {
		dst = binary.AppendUvarint(dst, di.ord.order)
		dst = append(dst, di.ord.id[:]...)
	}
	return dst
}

func decodeDead(src []byte) (deadInfo, error) {
	if len(src) == 0 || (src[0] != recordV1 && src[0] != pendingV2) {
		return deadInfo{}, ErrCorrupt
	}
	r := decoder{b: src[1:]}
	di := deadInfo{target: r.field(), route: r.field(), enqueued: r.varint(), deadAt: r.varint()}
	size := r.uvarint()
	attempts := r.uvarint()
	if src[0] == pendingV2 {
		di.ord = r.ordering()
	}
	if r.err || len(r.b) != 0 || size > math.MaxInt64 || attempts > math.MaxInt32 {
		return deadInfo{}, ErrCorrupt
	}
	di.size, di.attempts = int64(size), int(attempts)
	return di, nil
}

// Attempt encoding:
//
//	v1: 0x01 | at (varint) | duration (varint) | status (uvarint) | Error | Body
//
// Outcome is not stored: it follows from where the attempt is (see
// DeadLetter.Attempts).
func appendAttempt(dst []byte, a *delivery.Attempt) []byte {
	dst = append(dst, recordV1)
	dst = binary.AppendVarint(dst, a.At.UnixNano())
	dst = binary.AppendVarint(dst, int64(a.Duration))
	dst = binary.AppendUvarint(dst, uint64(a.Status))
	dst = binary.AppendUvarint(dst, uint64(len(a.Error)))
	dst = append(dst, a.Error...)
	body := a.Body
	if len(body) > MaxAttemptBody {
		body = body[:MaxAttemptBody]
	}
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

func decodeAttempt(src []byte) (delivery.Attempt, error) {
	if len(src) == 0 || src[0] != recordV1 {
		return delivery.Attempt{}, ErrCorrupt
	}
	r := decoder{b: src[1:]}
	at := r.varint()
	dur := r.varint()
	status := r.uvarint()
	errText := r.field()
	body := r.field()
	if r.err || len(r.b) != 0 || status > 999 {
		return delivery.Attempt{}, ErrCorrupt
	}
	return delivery.Attempt{
		At:       unixTime(at),
		Duration: durationOf(dur),
		Status:   int(status),
		Error:    string(errText),
		Body:     append([]byte(nil), body...),
	}, nil
}
