// Package dedupe refuses to deliver the same event twice. Senders retry
// when they are unsure an event arrived (a timeout, a lost 2xx), and some
// simply send twice; each copy carries the same key (a `webhook-id` or
// `Idempotency-Key` header, or an id inside the body such as Howxm's
// `entry.serial_number` or SurveyLab's `crk`). A route's Deduper remembers
// keys for a TTL, in bounded memory, and gives a repeat the event id of
// the first copy, so the sender is told "already accepted, here is its
// id" and the targets get the event once.
//
// # Configuration
//
// The TOML shape proposed for a route (the config package maps it onto
// Spec):
//
//	dedupe = { header = "webhook-id" }
//	dedupe = { header = "webhook-id", fallback = "svix-id" }
//	dedupe = { header = "Idempotency-Key", ttl = "48h" }
//	dedupe = { json = ["entry.serial_number"], ttl = "24h", max_entries = 100000 }
//	dedupe = { json = ["survey_id", "crk"] }
//
// # Use at ingest
//
//  1. key, ok := d.Key(peek, body, st.key[:0]); no key (header absent, a
//     JSON path missing or null) means no dedupe for this request.
//  2. first, seen := d.Begin(key, eventID):
//     First: go on; InFlight: another copy is being handled right now,
//     answer 409 with Retry-After so the sender tries again later;
//     Duplicate: answer a success carrying event id first, and deliver
//     nothing. Only the id is remembered, never the first answer: a key
//     is no credential, so the first answer's content is not replayed to
//     whoever repeats it (ingest answers {"event_id":...,"duplicate":true}).
//  3. Once the event is accepted (queued, or forwarded on a sync route),
//     d.Accept(key, eventID); if it failed before that (queue full,
//     plugin error), d.Forget(key, eventID) so the sender's retry is not
//     refused as a duplicate of an event that never went anywhere.
//
// Check is Begin and Accept in one step, for callers with nothing left
// that can fail.
//
// # Notes
//
//   - Two identical requests at the same moment: exactly one is First;
//     the other is InFlight (Begin) or Duplicate (Check). Never both First.
//   - Memory is bounded by max_entries: when full, the oldest key is
//     forgotten first, even inside its TTL. Size it above the number of
//     events a route receives in one TTL.
//   - The memory is per process and lost on restart: a sender's retry
//     after a restart may be delivered again. Targets that must never see
//     a duplicate should also check the delivery id (target id_header).
//   - Keys are stored as SHA-256 digests: fixed memory per entry whatever
//     the sender puts in a header, and no key material kept.
package dedupe

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/tidwall/gjson"
)

// Defaults applied by New.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultMaxEntries = 100_000
)

// inFlightLimit is how long a first copy may stay in flight (Begin without
// Accept or Forget) before a later copy may take over: longer than any
// ingest request lasts, short enough that a handler that died does not
// block the sender's retries for a whole TTL.
const inFlightLimit = time.Minute

// Spec is a route's dedupe configuration. Exactly one of Header and JSON.
type Spec struct {
	Header     string        // header = "webhook-id": the key is this header's value
	Fallback   string        // fallback = "svix-id": with header, the key when that header is absent or empty
	JSON       []string      // json = ["entry.serial_number"]: the key is these values of the JSON body (gjson paths)
	TTL        time.Duration // ttl = "24h": how long a key is remembered
	MaxEntries int           // max_entries = 100000: keys remembered at most
}

// Equal reports whether two specs describe the same dedupe, so that a
// reload can keep the running Deduper (and what it remembers).
func (s Spec) Equal(o Spec) bool {
	return s.Header == o.Header && s.Fallback == o.Fallback && slices.Equal(s.JSON, o.JSON) && s.TTL == o.TTL && s.MaxEntries == o.MaxEntries
}

// Seen is what Begin found.
type Seen uint8

const (
	First     Seen = iota // not seen within the TTL: this is the first copy, recorded now
	Duplicate             // seen and accepted: answer with the first event id
	InFlight              // seen and still being handled: ask the sender to retry
)

func (s Seen) String() string {
	switch s {
	case First:
		return "first"
	case Duplicate:
		return "duplicate"
	case InFlight:
		return "in_flight"
	}
	return "unknown"
}

// SpecError is a Spec that New refuses; Field is the TOML field at fault.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return "dedupe: " + e.Field + ": " + e.Msg }

// Deduper remembers the keys of one route. It is safe for concurrent use.
type Deduper struct {
	spec     Spec
	header   []byte
	fallback []byte // nil: none
	paths    []string
	ttl      int64 // nanoseconds
	now      func() time.Time

	mu  sync.Mutex
	lru *simplelru.LRU[digest, *entry]
}

type digest [sha256.Size]byte

// entry is one remembered key. It is never changed after another
// goroutine may hold its first slice, except for state, which only the
// mutex holder reads.
type entry struct {
	first   []byte // the first copy's event id: inline[:n], or its own array when longer
	seenAt  int64  // unix nanoseconds
	expires int64
	state   Seen // InFlight or Duplicate (accepted)
	inline  [40]byte
}

// New validates spec and builds its Deduper. It reports every problem
// it finds, each a *SpecError (joined with errors.Join when several).
func New(spec Spec) (*Deduper, error) {
	var problems []error
	bad := func(field, msg string) { problems = append(problems, &SpecError{field, msg}) }
	if (spec.Header == "") == (len(spec.JSON) == 0) {
		bad("header", `set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`)
	}
	if spec.Fallback != "" && spec.Header == "" {
		bad("fallback", `is a second header for when header is absent: set header too, or remove fallback`)
	}
	for i, p := range spec.JSON {
		if p == "" {
			bad(fmt.Sprintf("json[%d]", i), `is empty: write a dotted path such as "entry.serial_number"`)
		}
	}
	if spec.TTL < 0 {
		bad("ttl", `must not be negative: write a duration such as "24h"`)
	}
	if spec.MaxEntries < 0 {
		bad("max_entries", "must not be negative: 0 means the default of 100000")
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if spec.TTL == 0 {
		spec.TTL = DefaultTTL
	}
	if spec.MaxEntries == 0 {
		spec.MaxEntries = DefaultMaxEntries
	}
	// simplelru under our own mutex rather than the expirable LRU: Begin
	// needs look-up-and-insert as one atomic step (which needs our lock
	// anyway), the expirable LRU starts a goroutine that can never be
	// stopped (it would outlive every reload), and it reads the wall
	// clock itself, which tests cannot move.
	lru, err := simplelru.NewLRU[digest, *entry](spec.MaxEntries, nil)
	if err != nil {
		return nil, &SpecError{"max_entries", err.Error()}
	}
	d := &Deduper{
		spec:  spec,
		paths: slices.Clone(spec.JSON),
		ttl:   int64(spec.TTL),
		now:   time.Now,
		lru:   lru,
	}
	if spec.Header != "" {
		d.header = []byte(spec.Header)
	}
	if spec.Fallback != "" {
		d.fallback = []byte(spec.Fallback)
	}
	return d, nil
}

// Spec returns the spec with its defaults filled in.
func (d *Deduper) Spec() Spec {
	s := d.spec
	s.JSON = slices.Clone(s.JSON)
	return s
}

// Key appends the request's dedupe key to dst[:0]. ok is false when the
// request has none (header and fallback absent or empty, a JSON path
// missing or null): such a request is not deduplicated. header looks a
// header up (fasthttp: ctx.Request.Header.PeekBytes). Key allocates
// nothing when dst has room.
func (d *Deduper) Key(header func(name []byte) []byte, body []byte, dst []byte) ([]byte, bool) {
	dst = dst[:0]
	if d.header != nil {
		v := header(d.header)
		if len(v) == 0 && d.fallback != nil {
			v = header(d.fallback)
		}
		return append(dst, v...), len(v) > 0
	}
	if len(body) == 0 {
		return dst, false
	}
	// gjson.GetBytes copies its result to be safe; we copy into dst at
	// once, so we read the body in place.
	js := unsafe.String(&body[0], len(body))
	for _, p := range d.paths {
		r := gjson.Get(js, p)
		v := r.Raw
		switch r.Type {
		case gjson.Null:
			return dst, false // missing, or null: no key
		case gjson.String:
			// The value, not its JSON spelling: "a\u0062" and "ab" are one key.
			v = r.Str
			if v == "" {
				return dst, false
			}
		}
		// Each part length-prefixed, so ["ab","c"] and ["a","bc"] differ.
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst, true
}

// Begin looks key up and, when it is new (or expired, or its first copy
// has been in flight for too long), records it as in flight under eventID.
// For Duplicate and InFlight it returns the first copy's event id, which
// the caller must not modify. See the package doc for the protocol.
func (d *Deduper) Begin(key, eventID []byte) (firstEventID []byte, seen Seen) {
	return d.begin(key, eventID, InFlight)
}

// Check is Begin followed at once by Accept: it records a new key as
// accepted, and reports any sighting within the TTL as a duplicate.
func (d *Deduper) Check(key, eventID []byte) (firstEventID []byte, dup bool) {
	first, seen := d.begin(key, eventID, Duplicate)
	return first, seen != First
}

func (d *Deduper) begin(key, eventID []byte, state Seen) ([]byte, Seen) {
	k := digest(sha256.Sum256(key))
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireOldest(now)
	if e, ok := d.lru.Peek(k); ok && now < e.expires {
		if e.state == Duplicate {
			return e.first, Duplicate
		}
		if now-e.seenAt < int64(inFlightLimit) {
			return e.first, InFlight
		}
		// The first copy's handler never finished: let this one try.
	}
	// A new entry every time, never a reused one: a caller may still hold
	// the first slice of the entry it replaces.
	e := &entry{seenAt: now, expires: now + d.ttl, state: state}
	if len(eventID) <= len(e.inline) {
		e.first = e.inline[:copy(e.inline[:], eventID)]
	} else {
		e.first = slices.Clone(eventID)
	}
	d.lru.Add(k, e)
	return nil, First
}

// Accept marks key's in-flight entry as accepted: later copies are
// Duplicates of eventID. It does nothing when the entry is gone or belongs
// to another event.
func (d *Deduper) Accept(key, eventID []byte) {
	k := digest(sha256.Sum256(key))
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.lru.Peek(k); ok && string(e.first) == string(eventID) {
		e.state = Duplicate
	}
}

// Forget removes key when its entry belongs to eventID: the first copy
// failed before it was accepted, so the next copy must be handled afresh.
func (d *Deduper) Forget(key, eventID []byte) {
	k := digest(sha256.Sum256(key))
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.lru.Peek(k); ok && string(e.first) == string(eventID) {
		d.lru.Remove(k)
	}
}

// Len returns the number of keys held, expired ones not yet dropped
// included.
func (d *Deduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len()
}

// expireOldest drops a few expired entries from the old end. Entries go in
// at the new end with the same TTL, so the old end expires first; a couple
// per call keeps memory following the traffic without a sweeper goroutine.
func (d *Deduper) expireOldest(now int64) {
	for range 2 {
		_, e, ok := d.lru.GetOldest()
		if !ok || now < e.expires {
			return
		}
		d.lru.RemoveOldest()
	}
}
