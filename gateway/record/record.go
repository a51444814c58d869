// Package record is the one observer of an event's life. Ingest tells it
// how each request was answered (and what became of the event: chained,
// queued, forwarded), the dispatcher tells it every attempt; the journal
// (/admin/events), the Prometheus metrics and the log lines are its
// implementations, joined by Tee. gateway and dispatch take one Recorder
// instead of a journal, a registry and a logger each, so a new observer
// (a trace exporter, a console's live tail) is one more implementation,
// not a change to the hot path.
//
// Recorders are resolved per route and per target when a route table or
// a delivery lane is built (Route, Target), so a request pays for the
// observers it has and no lookup. Every method is called on the hot path:
// implementations must not allocate on success and must not keep the
// slices and pointers they are given past the call.
package record

import (
	"net/netip"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// Recorder hands out the recorders of routes and targets.
type Recorder interface {
	// Route returns the recorder of one route's requests; "" is the
	// requests that matched no route or were refused before routing.
	Route(name string) Route
	// Target returns the recorder of one target's attempts.
	Target(name string) Target
}

// Route is told of each request of one route.
type Route interface {
	// Chained: the route's transform chain ran over ev (err: it failed,
	// and the sender gets 502 plugin_failed).
	Chained(ev *delivery.Event, out *delivery.Outcome, err error)
	// Answered: the request has been answered; once per request.
	Answered(a *Answer)
}

// Target is told of each attempt at one target's deliveries: a sync
// route's forward (its only attempt, outcome AttemptError when it
// failed) and every attempt of the dispatcher.
type Target interface {
	// Attempted: attempt n (from 1) of d ended as a says.
	Attempted(d *delivery.Delivery, n int, a *delivery.Attempt)
}

// Answer is what became of one request.
type Answer struct {
	EventID  []byte
	Route    string // "" for a request that matched no route
	Status   int
	Code     string // the error code answered; "" on success
	Message  []byte // the sentence of an error answer, as the sender got it
	Took     time.Duration
	RemoteIP netip.Addr
	Method   []byte // nil when the request could not be read
	Path     []byte // never the query

	// Event is set once the request passed the checks (route, verify,
	// body, dedupe) and became an event received at ReceivedAt (unix ns).
	Event      bool
	ReceivedAt int64
	Duplicate  bool // a repeat of an accepted event: nothing delivered
	Dropped    bool // a plugin dropped it on purpose

	// Deliveries are the event's deliveries: stored (async) or sent now
	// (sync). A sync route's Attempts are theirs, one each; each was told
	// to its Target before.
	Deliveries []delivery.Delivery
	Attempts   []delivery.Attempt
}

// Tee joins recorders: each is told everything, in order. nil ones are
// left out; none at all is Nop.
func Tee(rs ...Recorder) Recorder {
	var t tee
	for _, r := range rs {
		if r != nil {
			t = append(t, r)
		}
	}
	switch len(t) {
	case 0:
		return Nop{}
	case 1:
		return t[0]
	}
	return t
}

type tee []Recorder

func (t tee) Route(name string) Route {
	rs := make(teeRoute, len(t))
	for i, r := range t {
		rs[i] = r.Route(name)
	}
	return rs
}

func (t tee) Target(name string) Target {
	ts := make(teeTarget, len(t))
	for i, r := range t {
		ts[i] = r.Target(name)
	}
	return ts
}

type teeRoute []Route

func (t teeRoute) Chained(ev *delivery.Event, out *delivery.Outcome, err error) {
	for _, r := range t {
		r.Chained(ev, out, err)
	}
}

func (t teeRoute) Answered(a *Answer) {
	for _, r := range t {
		r.Answered(a)
	}
}

type teeTarget []Target

func (t teeTarget) Attempted(d *delivery.Delivery, n int, a *delivery.Attempt) {
	for _, r := range t {
		r.Attempted(d, n, a)
	}
}

// Nop records nothing.
type Nop struct{}

func (Nop) Route(string) Route   { return Nop{} }
func (Nop) Target(string) Target { return Nop{} }

func (Nop) Chained(*delivery.Event, *delivery.Outcome, error)    {}
func (Nop) Answered(*Answer)                                     {}
func (Nop) Attempted(*delivery.Delivery, int, *delivery.Attempt) {}
