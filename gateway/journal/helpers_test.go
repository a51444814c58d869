package journal

import (
	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/record"
)

// What ingest tells the journal, in the shapes the tests use: each is one
// Answered, as ingest calls it.

// received: an event arrived on route at, nothing else known yet.
func (j *Journal) received(id []byte, route string, at int64) {
	j.Answered(&record.Answer{Event: true, EventID: id, Route: route, ReceivedAt: at})
}

// queued: an async event, its deliveries stored and the sender answered.
func (j *Journal) queued(id []byte, route string, at int64, status int, code string, ds []delivery.Delivery) {
	j.Answered(&record.Answer{Event: true, EventID: id, Route: route, ReceivedAt: at, Status: status, Code: code, Deliveries: ds})
}

// forwarded: a sync event, its deliveries sent with one attempt each.
func (j *Journal) forwarded(id []byte, route string, at int64, status int, code string, ds []delivery.Delivery, as []delivery.Attempt) {
	for i := range ds {
		j.Attempted(&ds[i], 1, &as[i])
	}
	j.Answered(&record.Answer{Event: true, EventID: id, Route: route, ReceivedAt: at, Status: status, Code: code, Deliveries: ds})
}
