package dispatch

import (
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// Ordered delivery (a target's order = "fifo"). The queue keeps the
// sequences (gateway/queue, fifo.go); the dispatcher only tells it, at
// Enqueue, which deliveries are in one and under which key, because the
// target's config is known here. That decision is stored with the
// delivery: a reload that changes order or order_key applies to
// deliveries enqueued after it, and those already queued keep theirs.

// orderPaths maps each fifo target of cfgs to its order_key ("": the whole
// target is one sequence). Built with the lanes, for Enqueue.
func orderPaths(cfgs []config.Target) map[string]string {
	var m map[string]string
	for i := range cfgs {
		if cfgs[i].Order == config.OrderFIFO {
			if m == nil {
				m = make(map[string]string)
			}
			m[cfgs[i].Name] = cfgs[i].OrderKey
		}
	}
	return m
}

// sequence marks the deliveries of ds bound for fifo targets as Ordered,
// each with its key, and every other one as not: the config decides, not
// what a caller left in a delivery. Without a fifo target it only clears
// the mark, so unordered delivery costs what it did.
func (g *Lanes) sequence(ds []delivery.Delivery) {
	if len(g.fifo) == 0 {
		for i := range ds {
			ds[i].Ordered = false
		}
		return
	}
	for i := range ds {
		d := &ds[i]
		path, ok := g.fifo[d.Target]
		d.Ordered = ok
		d.OrderKey = d.OrderKey[:0]
		if ok && path != "" {
			d.OrderKey = orderKey(d.OrderKey, d.Body, path)
		}
	}
}

// orderKey appends the key of body at path to dst: a string's value (so
// "a\u0062" and "ab" are one key), any other value's JSON text. A body
// that is not JSON, or has nothing, null or "" there, has the empty key:
// those share one sequence, the target's "no key" sequence.
func orderKey(dst, body []byte, path string) []byte {
	if len(body) == 0 || !gjson.ValidBytes(body) {
		return dst
	}
	// A string view, not GetBytes, which copies the result; dst copies
	// what is kept.
	r := gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), path)
	switch r.Type {
	case gjson.Null:
		return dst
	case gjson.String:
		return append(dst, r.Str...)
	}
	return append(dst, r.Raw...)
}
