package journal

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// BenchmarkRecord is the journal's cost per event as a sync or async route
// pays it: the chain outcome, two deliveries, the answer, and one attempt.
func BenchmarkRecord(b *testing.B) {
	j := New(DefaultSize)
	ids := make([][]byte, 4*DefaultSize)
	dss := make([][]delivery.Delivery, len(ids))
	for i := range ids {
		ids[i] = evID(i)
		dss[i] = deliveriesOf(ids[i], "howxm", "crm", "survey")
	}
	out := &delivery.Outcome{Emitted: true}
	at := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % len(ids)
		ev := delivery.Event{ID: ids[k], Route: "howxm", ReceivedAt: 1}
		out.Deliveries = dss[k]
		j.Chain(&ev, out, nil)
		j.queued(ids[k], "howxm", 1, 202, "", dss[k])
		j.Attempt(&dss[k][0], delivery.Attempt{At: at, Status: 200, Duration: time.Millisecond, Outcome: delivery.AttemptSuccess})
	}
}

// BenchmarkRecordParallel is the same from every core at once: the
// journal's one mutex is what is measured.
func BenchmarkRecordParallel(b *testing.B) {
	j := New(DefaultSize)
	ids := make([][]byte, 4*DefaultSize)
	dss := make([][]delivery.Delivery, len(ids))
	for i := range ids {
		ids[i] = evID(i)
		dss[i] = deliveriesOf(ids[i], "howxm", "crm")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		out := &delivery.Outcome{}
		for i := 0; pb.Next(); i++ {
			k := i % len(ids)
			ev := delivery.Event{ID: ids[k], Route: "howxm", ReceivedAt: 1}
			j.Chain(&ev, out, nil)
			j.queued(ids[k], "howxm", 1, 200, "", dss[k])
		}
	})
}
