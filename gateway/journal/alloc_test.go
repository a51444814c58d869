//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package journal

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// One event's recording (chain, deliveries, answer, one attempt) must not
// allocate once the ring has gone round: ingest records on the hot path.
func TestJournalRecordAllocs(t *testing.T) {
	j := New(64)
	ids := make([][]byte, 256)
	dss := make([][]delivery.Delivery, len(ids))
	for i := range ids {
		ids[i] = evID(i)
		dss[i] = deliveriesOf(ids[i], "r", "crm", "survey")
	}
	out := &delivery.Outcome{Emitted: true}
	as := []delivery.Attempt{{Status: 200, Outcome: delivery.AttemptSuccess}, {Status: 500, Error: "status 500", Outcome: delivery.AttemptError}}
	n := 0
	record := func() {
		i := n % len(ids)
		n++
		ev := delivery.Event{ID: ids[i], Route: "r", ReceivedAt: 1}
		out.Deliveries = dss[i]
		j.Chain(&ev, out, nil)
		j.queued(ids[i], "r", 1, 202, "", dss[i])
		j.Attempt(&dss[i][0], delivery.Attempt{At: time.Unix(1, 0), Status: 200, Outcome: delivery.AttemptSuccess})
		j.forwarded(ids[i], "r", 1, 200, "", dss[i], as)
	}
	for range 2 * len(ids) {
		record()
	}
	if a := testing.AllocsPerRun(1000, record); a != 0 {
		t.Errorf("recording one event allocates %v times, want 0", a)
	}
}
