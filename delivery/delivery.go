// Package delivery is hookgate's message model: the Event a sender pushed,
// and the Deliveries it becomes.
//
// It is the vocabulary shared by the ingest server (gateway), the WASM host
// (transforms) and the durable queue (gateway/queue), so it sits beside
// them rather than inside either, and imports neither fasthttp nor wazero. Every slice field is reused between requests: a value
// is valid only until its owner resets it, and anything that outlives the
// request (a queued delivery, a log line) must copy what it keeps.
package delivery

import "errors"

// ErrQueueFull is wrapped by a queue that refuses deliveries because it is
// over its depth or byte budget (gateway/queue's ErrFull is this value).
// Ingest looks for it with errors.Is to answer 503 with Retry-After, so
// the queue and the ingest server agree on it without importing each
// other.
var ErrQueueFull = errors.New("queue over budget")

// KV is one header or query parameter. Keys and values are raw bytes so the
// hot path never converts to string.
type KV struct {
	Key   []byte
	Value []byte
}

// Event is one incoming request as the transform chain sees it. Plugins read
// it through host functions and change it through the "current event"
// handle; see plugins/ABI.md.
type Event struct {
	ID         []byte // "evt_" + 26 base32 characters, unique per accepted request
	Route      string // route name from config; not reused, points into the route table
	ReceivedAt int64  // unix nanoseconds
	Method     []byte
	Path       []byte
	Query      []byte // raw query string, without '?'
	Headers    []KV
	Body       []byte
}

// Reset empties e for reuse, keeping capacity.
func (e *Event) Reset() {
	e.ID = e.ID[:0]
	e.Route = ""
	e.ReceivedAt = 0
	e.Method = e.Method[:0]
	e.Path = e.Path[:0]
	e.Query = e.Query[:0]
	e.Headers = resetKVs(e.Headers)
	e.Body = e.Body[:0]
}

// Header returns the value of the first header named name (ASCII
// case-insensitive), and whether it was present.
func (e *Event) Header(name []byte) ([]byte, bool) {
	return Lookup(e.Headers, name)
}

// Delivery is one complete outgoing request: once decided at ingest it is
// never transformed again, so a retry sends exactly the same thing.
//
// Empty fields fall back to the target's configuration: Method to the
// target's method, Path to the path of the target's URL. Query and Headers
// are applied over the target's static query and headers (same key
// replaces).
type Delivery struct {
	ID        []byte // stable across attempts: event id + "." + index
	EventID   []byte
	Route     string
	Target    string
	Method    []byte
	Path      []byte
	Query     []KV
	Headers   []KV
	Body      []byte
	NotBefore int64 // unix nanoseconds; 0 means as soon as possible

	// Ordered and OrderKey put the delivery in a sequence (the target's
	// order = "fifo"): the queue attempts it only once every delivery
	// enqueued before it for the same Target and OrderKey has been
	// delivered or dead-lettered. An empty OrderKey is a sequence too:
	// the whole target's, or the deliveries without a key. gateway/dispatch
	// sets both at Enqueue from the target's config; the queue keeps them
	// in its own per-delivery state, not in the stored request, so a
	// claimed delivery reads them back as false and empty.
	Ordered  bool
	OrderKey []byte
}

// Reset empties d for reuse, keeping capacity.
func (d *Delivery) Reset() {
	d.ID = d.ID[:0]
	d.EventID = d.EventID[:0]
	d.Route = ""
	d.Target = ""
	d.Method = d.Method[:0]
	d.Path = d.Path[:0]
	d.Query = resetKVs(d.Query)
	d.Headers = resetKVs(d.Headers)
	d.Body = d.Body[:0]
	d.NotBefore = 0
	d.Ordered = false
	d.OrderKey = d.OrderKey[:0]
}

// CopyTo makes dst a deep copy of d, reusing dst's buffers.
func (d *Delivery) CopyTo(dst *Delivery) {
	dst.ID = append(dst.ID[:0], d.ID...)
	dst.EventID = append(dst.EventID[:0], d.EventID...)
	dst.Route = d.Route
	dst.Target = d.Target
	dst.Method = append(dst.Method[:0], d.Method...)
	dst.Path = append(dst.Path[:0], d.Path...)
	dst.Query = copyKVs(dst.Query, d.Query)
	dst.Headers = copyKVs(dst.Headers, d.Headers)
	dst.Body = append(dst.Body[:0], d.Body...)
	dst.NotBefore = d.NotBefore
	dst.Ordered = d.Ordered
	dst.OrderKey = append(dst.OrderKey[:0], d.OrderKey...)
}

// Response is an answer for the sender, set by a plugin ("respond") on a
// route; on sync routes it replaces the target's answer.
type Response struct {
	Set     bool
	Status  int
	Headers []KV
	Body    []byte
}

// Outcome is what a transform chain decided for one event.
//
// With no chain, or a chain that neither dropped nor emitted, the
// (possibly modified) event becomes one delivery per route target (see
// Defaults). If any plugin emitted, the emitted deliveries replace that
// default.
type Outcome struct {
	Dropped    bool
	DropReason []byte
	Emitted    bool
	Deliveries []Delivery // only the first len are live; capacity is reused
	Response   Response
	// NotBefore is the event-wide not-before time a plugin set (set_delay
	// on the event), unix nanoseconds; 0 for none. The chain has already
	// given it to every emitted delivery without its own; the default
	// deliveries get it from Defaults.
	NotBefore int64
}

// Reset empties o for reuse, keeping capacity.
func (o *Outcome) Reset() {
	o.Dropped = false
	o.DropReason = o.DropReason[:0]
	o.Emitted = false
	for i := range o.Deliveries {
		o.Deliveries[i].Reset()
	}
	o.Deliveries = o.Deliveries[:0]
	o.NotBefore = 0
	o.Response.Set = false
	o.Response.Status = 0
	o.Response.Headers = resetKVs(o.Response.Headers)
	o.Response.Body = o.Response.Body[:0]
}

// Add appends an empty delivery, reusing a previously allocated one when
// capacity allows, and returns it.
func (o *Outcome) Add() *Delivery {
	n := len(o.Deliveries)
	if n < cap(o.Deliveries) {
		o.Deliveries = o.Deliveries[:n+1]
		o.Deliveries[n].Reset()
	} else {
		o.Deliveries = append(o.Deliveries, Delivery{})
	}
	return &o.Deliveries[n]
}

// Lookup returns the value of the first entry whose key equals name, ignoring
// ASCII case.
func Lookup(kvs []KV, name []byte) ([]byte, bool) {
	for i := range kvs {
		if EqualFold(kvs[i].Key, name) {
			return kvs[i].Value, true
		}
	}
	return nil, false
}

// Set replaces the value of the first entry named key (ASCII
// case-insensitive) and removes any later ones, or appends a new entry.
// Buffers of reused entries are kept.
func Set(kvs []KV, key, value []byte) []KV {
	for i := range kvs {
		if EqualFold(kvs[i].Key, key) {
			kvs[i].Value = append(kvs[i].Value[:0], value...)
			return append(kvs[:i+1], Del(kvs[i+1:], key)...)
		}
	}
	return appendKV(kvs, key, value)
}

// Del removes every entry named key (ASCII case-insensitive). Removed
// entries are swapped past len rather than overwritten, so their buffers
// stay distinct and reusable.
func Del(kvs []KV, key []byte) []KV {
	n := 0
	for i := range kvs {
		if !EqualFold(kvs[i].Key, key) {
			kvs[n], kvs[i] = kvs[i], kvs[n]
			n++
		}
	}
	return kvs[:n]
}

// Append adds key=value, reusing the buffers of a spare entry past len.
func Append(kvs []KV, key, value []byte) []KV {
	return appendKV(kvs, key, value)
}

func appendKV(kvs []KV, key, value []byte) []KV {
	n := len(kvs)
	if n < cap(kvs) {
		kvs = kvs[:n+1]
		kvs[n].Key = append(kvs[n].Key[:0], key...)
		kvs[n].Value = append(kvs[n].Value[:0], value...)
		return kvs
	}
	return append(kvs, KV{Key: append([]byte(nil), key...), Value: append([]byte(nil), value...)})
}

func resetKVs(kvs []KV) []KV {
	for i := range kvs {
		kvs[i].Key = kvs[i].Key[:0]
		kvs[i].Value = kvs[i].Value[:0]
	}
	return kvs[:0]
}

func copyKVs(dst, src []KV) []KV {
	dst = resetKVs(dst)
	for i := range src {
		dst = appendKV(dst, src[i].Key, src[i].Value)
	}
	return dst
}

// EqualFold reports whether a and b are equal ignoring ASCII case: header
// names. It allocates nothing and, unlike bytes.EqualFold, never folds
// non-ASCII letters (a "Kelvin sign" is not a k).
func EqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
