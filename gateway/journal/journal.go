// Package journal keeps a bounded in-memory record of recent events for
// GET /admin/events/{id}: the route, when it arrived, what the transform
// chain decided, each delivery and each of its attempts.
//
// The journal is one of the recorders of gateway/record: ingest tells it
// what the chain decided (Chained) and how the event was answered, with
// its deliveries (Answered); the sync forward and the delivery workers
// tell it each attempt (Attempted), which finds its event through the
// delivery id ("<event id>.<index>"). The journal is a fixed ring of the
// last Size events with an index by id: the oldest event is forgotten
// when a new one arrives. It lives in memory only, so after a restart it
// is empty (dead letters, which are durable, are in /admin/dead).
//
//	j := journal.New(10000)
//	rec := record.Tee(record.Log(log, false), j) // what gateway.Deps and dispatch.Options take
//	v, ok := j.Get("evt_...")
//
// # Notes
//
//   - Recording copies into buffers the ring keeps, so in steady state it
//     allocates nothing; ids longer than MaxIDLen are not recorded.
//   - Every method is safe on a nil *Journal (it does nothing; Get finds
//     nothing), so the journal can be left unwired.
//   - Attempts of a delivery whose event is no longer (or never was) in
//     the journal, such as one queued before a restart, start a partial
//     entry with what the delivery says.
package journal

import (
	"bytes"
	"encoding/binary"
	"sync"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// Limits of one entry: fan-outs and retry storms must not make an entry
// grow without bound. What is past them is counted, not kept.
const (
	DefaultSize   = 10000
	MaxIDLen      = 32 // "evt_" + 26 characters is 30
	MaxDeliveries = 16 // per event
	MaxAttempts   = 10 // per delivery: the first, then the latest ones
	maxText       = 512
)

type key [MaxIDLen]byte

// Journal is the ring of recent events. Its methods are safe for
// concurrent use.
type Journal struct {
	mu    sync.Mutex
	ring  []entry
	next  int // slot the next new event takes
	index index
	start time.Time
}

// slotText is the room each ring slot has for its first delivery's text
// (dentry.text) before that text moves to a buffer of its own: a
// delivery id ("evt_" + 26 characters + ".0"), a target name, and room
// for a method, a path and a short query.
const slotText = 128

// New returns a journal of the last size events (DefaultSize when size
// <= 0). The ring and the index are allocated up front, and so is what
// an event of one delivery and one attempt records: each slot's first
// delivery, its first attempt and its text, side by side (firstDelivery)
// rather than in buffers of their own. Recording an event writes a slot
// that has gone cold since the ring last came round: scattered over the
// heap, the delivery's five buffers, its two slices and the route's copy
// were each a cache miss of their own, and the journal cost about 3% of
// a passthrough request's CPU (benchmarks/HISTORY.md, twentieth run). A
// longer text, a second delivery or a second attempt grows out of the
// slot into a buffer of its own, which the slot then keeps.
func New(size int) *Journal {
	if size <= 0 {
		size = DefaultSize
	}
	ring := make([]entry, size)
	first := make([]firstDelivery, size)
	for i := range ring {
		f := &first[i]
		f.d[0].text = f.text[:0]
		f.d[0].as = f.a[:0]
		ring[i].ds = f.d[:0]
	}
	return &Journal{ring: ring, index: newIndex(size), start: time.Now()}
}

// firstDelivery is the room a ring slot has for its first delivery: the
// record, its first attempt and its text, next to each other.
type firstDelivery struct {
	d    [1]dentry
	a    [1]attempt
	text [slotText]byte
}

// Size is how many events the journal keeps.
func (j *Journal) Size() int {
	if j == nil {
		return 0
	}
	return len(j.ring)
}

type entry struct {
	used    bool
	partial bool // started by an attempt: the event was received before the journal knew it
	id      key
	idLen   uint8
	hash    uint32 // the id's, for the index
	route   string // a route's name is a string the configuration or the queue keeps: no copy
	recv    int64

	chainRan   bool
	dropped    bool
	dropReason []byte
	emitted    int
	pluginErr  []byte

	status int    // the answer to the sender; 0 until known
	code   []byte // its error code, if any

	nd int // deliveries decided, kept or not
	ds []dentry
}

type dentry struct {
	// text holds the delivery's id, target, method, path and query pairs
	// one after another, each ending where ends says (field reads one):
	// one buffer rather than five (see New). The query pairs are as the
	// delivery carries them, each name and value length-prefixed
	// (queryPairs), so a key or value holding '&', '=' or '+' reads back
	// exactly; the target's own query is added when shown.
	text      []byte
	ends      [nFields]int32
	notBefore int64
	n         int // attempts made, kept or not
	as        []attempt
}

// The fields of dentry.text, in order.
const (
	fID = iota
	fTarget
	fMethod
	fPath
	fQuery
	nFields
)

// field returns dentry.text's field f.
func (x *dentry) field(f int) []byte {
	start := int32(0)
	if f > 0 {
		start = x.ends[f-1]
	}
	return x.text[start:x.ends[f]]
}

// end marks the end of field f at the text's length.
func (x *dentry) end(f int) { x.ends[f] = int32(len(x.text)) }

// attempt is a delivery.Attempt as the ring keeps it: err in a buffer
// that is reused, no Body.
type attempt struct {
	at       int64
	status   int
	err      []byte
	duration time.Duration
	outcome  delivery.AttemptOutcome
}

func keyOf(id []byte) (key, bool) {
	var k key
	if len(id) == 0 || len(id) > MaxIDLen {
		return k, false
	}
	copy(k[:], id)
	return k, true
}

// slot returns the entry of id, creating it (and forgetting the oldest
// event) when it is not there. Call with j.mu held.
func (j *Journal) slot(id []byte) *entry {
	e, _ := j.slotNew(id)
	return e
}

// slotNew is slot that also says whether the entry was created.
func (j *Journal) slotNew(id []byte) (*entry, bool) {
	k, ok := keyOf(id)
	if !ok {
		return nil, false
	}
	// The newest entry first: an event's records (its answer, its sync
	// attempts, its chain) come one after another, and the entry just
	// made is in the cache where the index's slot, at a random place in
	// a table of twice the ring's size, is not.
	if i := (j.next + len(j.ring) - 1) % len(j.ring); j.ring[i].used && j.ring[i].id == k {
		return &j.ring[i], false
	}
	h := j.index.hash(&k)
	if i, ok := j.index.get(&k, h, j.ring); ok {
		return &j.ring[i], false
	}
	i := j.next
	j.next = (j.next + 1) % len(j.ring)
	e := &j.ring[i]
	if e.used {
		j.index.del(e.hash, i)
	}
	e.reset()
	e.used, e.id, e.idLen, e.hash = true, k, uint8(len(id)), h
	j.index.put(h, i)
	return e, true
}

func (e *entry) reset() {
	ds := e.ds[:0]
	*e = entry{dropReason: e.dropReason[:0], pluginErr: e.pluginErr[:0], code: e.code[:0], ds: ds}
}

// Chain records what the route's transform chain decided for ev: err is
// the chain's error (nil when it ran), out its outcome.
func (j *Journal) Chain(ev *delivery.Event, out *delivery.Outcome, err error) {
	if j == nil {
		return
	}
	var msg string
	if err != nil {
		msg = err.Error() // a failing plugin is rare: this allocation is fine
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.slot(ev.ID)
	if e == nil {
		return
	}
	e.received(ev.Route, ev.ReceivedAt)
	e.chainRan = true
	e.pluginErr = appendText(e.pluginErr[:0], msg)
	if out != nil && err == nil {
		e.dropped = out.Dropped
		e.dropReason = appendText(e.dropReason[:0], string(out.DropReason))
		if out.Emitted {
			e.emitted = len(out.Deliveries)
		}
	}
}

func (e *entry) received(route string, at int64) {
	if e.route == "" {
		e.route = route
	}
	if e.recv == 0 {
		e.recv = at
	}
}

// delivery returns the record of d in e, adding it if there is room.
func (e *entry) delivery(d *delivery.Delivery) *dentry {
	for i := range e.ds {
		if bytes.Equal(e.ds[i].field(fID), d.ID) {
			return &e.ds[i]
		}
	}
	e.nd++
	if len(e.ds) >= MaxDeliveries {
		return nil
	}
	n := len(e.ds)
	if n < cap(e.ds) {
		e.ds = e.ds[:n+1]
	} else {
		e.ds = append(e.ds, dentry{})
	}
	x := &e.ds[n]
	x.text = append(x.text[:0], d.ID...)
	x.end(fID)
	x.text = append(x.text, d.Target...)
	x.end(fTarget)
	x.text = append(x.text, d.Method...)
	x.end(fMethod)
	x.text = append(x.text, d.Path...)
	x.end(fPath)
	for _, q := range d.Query {
		x.text = binary.AppendUvarint(x.text, uint64(len(q.Key)))
		x.text = append(x.text, q.Key...)
		x.text = binary.AppendUvarint(x.text, uint64(len(q.Value)))
		x.text = append(x.text, q.Value...)
	}
	x.end(fQuery)
	x.notBefore = d.NotBefore
	x.n = 0
	x.as = x.as[:0]
	return x
}

// Attempt records one attempt at sending d (a.Body is not kept). The
// event is found through d.EventID, or the delivery id up to its last '.'.
func (j *Journal) Attempt(d *delivery.Delivery, a delivery.Attempt) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e, created := j.slotNew(eventIDOf(d))
	if e == nil {
		return
	}
	if created {
		e.partial = true
	}
	e.received(d.Route, 0)
	e.attempt(d, &a)
}

func (e *entry) attempt(d *delivery.Delivery, a *delivery.Attempt) {
	x := e.delivery(d)
	if x == nil {
		return
	}
	x.n++
	at := attempt{at: a.At.UnixNano(), status: a.Status, duration: a.Duration, outcome: a.Outcome}
	if len(x.as) >= MaxAttempts {
		// Keep the first attempt and the latest ones.
		saved := x.as[1].err
		copy(x.as[1:], x.as[2:])
		x.as[len(x.as)-1].err = saved
		x.as = x.as[:len(x.as)-1]
	}
	n := len(x.as)
	if n < cap(x.as) {
		x.as = x.as[:n+1]
	} else {
		x.as = append(x.as, attempt{})
	}
	buf := x.as[n].err
	x.as[n] = at
	x.as[n].err = appendText(buf[:0], a.Error)
}

func eventIDOf(d *delivery.Delivery) []byte {
	if len(d.EventID) > 0 {
		return d.EventID
	}
	if i := bytes.LastIndexByte(d.ID, '.'); i > 0 {
		return d.ID[:i]
	}
	return d.ID
}

// appendText appends s cut to maxText bytes.
func appendText(dst []byte, s string) []byte {
	if len(s) > maxText {
		s = s[:maxText]
	}
	return append(dst, s...)
}
