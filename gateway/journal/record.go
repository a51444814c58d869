package journal

import (
	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/record"
)

// The journal is a record.Recorder: one for every route and target, since
// it keys events by id.

// Route returns j.
func (j *Journal) Route(string) record.Route { return j }

// Target returns j.
func (j *Journal) Target(string) record.Target { return j }

// Chained records what the chain decided (Chain).
func (j *Journal) Chained(ev *delivery.Event, out *delivery.Outcome, err error) {
	j.Chain(ev, out, err)
}

// Attempted records an attempt of the dispatcher (Attempt).
func (j *Journal) Attempted(d *delivery.Delivery, _ int, a *delivery.Attempt) { j.Attempt(d, *a) }

// Answered records an event's answer with its deliveries under one lock
// (a sync route's attempts came before, through Attempted). Requests refused before they became
// events are not journaled: they have no deliveries to look up.
func (j *Journal) Answered(a *record.Answer) {
	if j == nil || !a.Event {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.slot(a.EventID)
	if e == nil {
		return
	}
	// An attempt of the dispatcher may have come first and started the
	// entry as partial; ingest knows the whole event.
	e.partial = false
	e.received(a.Route, a.ReceivedAt)
	for i := range a.Deliveries {
		e.delivery(&a.Deliveries[i])
	}
	e.status = a.Status
	e.code = append(e.code[:0], a.Code...)
}
