package journal

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// Event is what the journal knows about one event, as GET
// /admin/events/{id} shows it.
type Event struct {
	ID         string     `json:"id"`
	Route      string     `json:"route,omitempty"`
	ReceivedAt *time.Time `json:"received_at,omitempty"`
	// Partial: the journal learnt of the event from a delivery attempt,
	// not from ingest (it was received before this process started, or
	// before the journal forgot it).
	Partial bool   `json:"partial,omitempty"`
	Status  int    `json:"status,omitempty"` // the answer to the sender, when known
	Code    string `json:"code,omitempty"`   // its error code
	Chain   *Chain `json:"chain,omitempty"`  // nil: the route has no transforms (or they did not run)
	// Deliveries holds at most MaxDeliveries; DeliveriesTotal counts all.
	Deliveries      []Delivery `json:"deliveries"`
	DeliveriesTotal int        `json:"deliveries_total"`
}

// Chain is what the transform chain decided.
type Chain struct {
	Dropped     bool   `json:"dropped"`
	DropReason  string `json:"drop_reason,omitempty"`
	Emitted     int    `json:"emitted"` // deliveries the plugins emitted (0: the route's targets got the event)
	PluginError string `json:"plugin_error,omitempty"`
}

// Delivery is one delivery and its attempts. Method, Path and Query are
// what the delivery itself sets (empty: the target's own); URL is filled
// in by whoever knows the targets (internal/server), without secrets.
type Delivery struct {
	ID        string        `json:"id"`
	Target    string        `json:"target"`
	Method    string        `json:"method,omitempty"`
	URL       string        `json:"url,omitempty"`
	Path      string        `json:"-"`
	Query     []delivery.KV `json:"-"` // the delivery's own query pairs, in order, as sent
	NotBefore *time.Time    `json:"not_before,omitempty"`
	// Attempts holds the first and the latest, at most MaxAttempts (with
	// no Body); AttemptsTotal counts all.
	Attempts      []delivery.Attempt `json:"attempts"`
	AttemptsTotal int                `json:"attempts_total"`
}

// Get returns what the journal knows of event id.
func (j *Journal) Get(id string) (Event, bool) {
	if j == nil {
		return Event{}, false
	}
	k, ok := keyOf([]byte(id))
	if !ok {
		return Event{}, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	i, ok := j.index.get(&k, j.index.hash(&k), j.ring)
	if !ok {
		return Event{}, false
	}
	e := &j.ring[i]
	v := Event{
		ID: string(e.id[:e.idLen]), Route: e.route, Partial: e.partial,
		Status: e.status, Code: string(e.code), Deliveries: []Delivery{}, DeliveriesTotal: e.nd,
	}
	if e.recv != 0 {
		t := time.Unix(0, e.recv)
		v.ReceivedAt = &t
	}
	if e.chainRan {
		v.Chain = &Chain{Dropped: e.dropped, DropReason: string(e.dropReason), Emitted: e.emitted, PluginError: string(e.pluginErr)}
	}
	for i := range e.ds {
		x := &e.ds[i]
		d := Delivery{ID: string(x.field(fID)), Target: string(x.field(fTarget)), Method: string(x.field(fMethod)),
			Path: string(x.field(fPath)), Query: queryPairs(x.field(fQuery)), Attempts: []delivery.Attempt{}, AttemptsTotal: x.n}
		if x.notBefore != 0 {
			t := time.Unix(0, x.notBefore)
			d.NotBefore = &t
		}
		for _, a := range x.as {
			d.Attempts = append(d.Attempts, delivery.Attempt{At: time.Unix(0, a.at), Status: a.status, Error: string(a.err),
				Duration: a.duration, Outcome: a.outcome})
		}
		v.Deliveries = append(v.Deliveries, d)
	}
	return v, true
}

// Len is how many events the journal holds now.
func (j *Journal) Len() int {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.index.n
}

// Since is when the journal started: it holds nothing older.
func (j *Journal) Since() time.Time {
	if j == nil {
		return time.Time{}
	}
	return j.start
}

// queryPairs decodes the length-prefixed pairs of dentry.text's query.
func queryPairs(b []byte) []delivery.KV {
	var out []delivery.KV
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, false
		}
		v := bytes.Clone(b[k : k+int(n)])
		b = b[k+int(n):]
		return v, true
	}
	for len(b) > 0 {
		key, ok := next()
		if !ok {
			break
		}
		val, ok := next()
		if !ok {
			break
		}
		out = append(out, delivery.KV{Key: key, Value: val})
	}
	return out
}
