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

// TestOrderedEnqueueAllocs: the same for deliveries in sequences (order =
// "fifo"), with a new key every cycle as with one key per customer: the
// sequence of a key is created at its first delivery and freed at its
// last ack, and both reuse what earlier keys left.
func TestOrderedEnqueueAllocs(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()
	for i := range ev {
		ev[i].Ordered = true
		ev[i].OrderKey = append(make([]byte, 0, 16), "cust-00000"...)
	}
	ls := make([]Leased, 0, 2)
	n := 0
	cycle := func() {
		n++
		for i := range ev { // a new key: "cust-<n>"
			k := ev[i].OrderKey[:5]
			for v := n; len(k) < 10; v /= 10 {
				k = append(k, byte('0'+v%10))
			}
			ev[i].OrderKey = k
		}
		if err := s.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"crm", "survey"} {
			ls, _ = s.Claim(ls, target, time.Now(), 1, time.Minute)
			if len(ls) != 1 {
				t.Fatalf("claimed %d of %s's one delivery", len(ls), target)
			}
			s.Ack(ls[0].Ref)
		}
	}
	for range 100 {
		cycle()
	}
	if n := testing.AllocsPerRun(200, cycle); n > 0 {
		t.Fatalf("enqueue+claim+ack of one ordered event allocates %.1f times", n)
	}
}
