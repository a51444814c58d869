//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package queue

import (
	"testing"
	"time"
)

// TestEnqueueAllocs: the ingest hot path (Enqueue) and the worker path
// (Claim, Ack) allocate nothing once warm: records are encoded in place in
// pebble's pooled batches, entries are recycled, names interned.
func TestEnqueueAllocs(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()
	ls := make([]Leased, 0, 2)
	cycle := func() {
		if err := s.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"crm", "survey"} {
			ls, _ = s.Claim(ls, target, time.Now(), 1, time.Minute)
			for i := range ls {
				s.Ack(ls[i].Ref)
			}
		}
	}
	for range 100 { // warm up: pools, maps, interned names
		cycle()
	}
	if n := testing.AllocsPerRun(200, cycle); n > 0 {
		t.Fatalf("enqueue+claim+ack of one event allocates %.1f times", n)
	}
}
