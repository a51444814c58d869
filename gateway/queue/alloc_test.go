//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package queue

import (
	"runtime"
	"sync"
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

// TestSharedCommitsAllocs: Enqueue calls that share a batch, and acks
// that share a commit (enqueue.go, acks.go), allocate nothing once warm
// either: the groups come from a free list, the batches from Pebble's
// pool, the acks' buffers are swapped, and the waiting is done on a
// sync.Cond. On one P, 16 senders start together, so their calls are
// grouped (the batch count proves it), and so are the 32 acks after.
func TestSharedCommitsAllocs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const senders = 16
	var wg sync.WaitGroup
	enqueue := make(chan struct{})
	ack := make(chan []Leased)
	for range senders {
		ev := benchEvent()
		go func() {
			for range enqueue {
				if err := s.Enqueue(ev); err != nil {
					t.Error(err)
				}
				wg.Done()
			}
		}()
		go func() {
			for ls := range ack {
				for i := range ls {
					if err := s.Ack(ls[i].Ref); err != nil {
						t.Error(err)
					}
				}
				wg.Done()
			}
		}()
	}
	defer close(enqueue)
	defer close(ack)
	ls := make([]Leased, 0, senders)
	round := func() {
		wg.Add(senders)
		for range senders {
			enqueue <- struct{}{}
		}
		wg.Wait()
		for _, target := range []string{"crm", "survey"} {
			ls, _ = s.Claim(ls, target, time.Now(), senders, time.Minute)
			if len(ls) != senders {
				t.Fatalf("claimed %d of %s's %d deliveries", len(ls), target, senders)
			}
			wg.Add(senders)
			for i := range ls {
				ack <- ls[i : i+1]
			}
			wg.Wait()
		}
	}
	for range 50 { // warm up: pools, free lists, maps, interned names
		round()
	}
	before := s.batches.Load()
	const rounds = 100
	if n := testing.AllocsPerRun(rounds, round); n > 0 {
		t.Fatalf("a round of %d concurrent Enqueue calls and their %d acks allocates %.1f times", senders, 2*senders, n)
	}
	batches := s.batches.Load() - before
	if batches >= (rounds+1)*senders/2 {
		t.Fatalf("%d calls in %d batches: the test did not exercise shared batches", (rounds+1)*senders, batches)
	}
	t.Logf("%d calls in %d batches", (rounds+1)*senders, batches)
	s.mu.Lock()
	depth := s.depth
	s.mu.Unlock()
	if depth != 0 {
		t.Fatalf("%d deliveries left after every one was acked", depth)
	}
}

// TestClaimFromTablesAllocs: claims that read a backlog back from
// sstables, several records through one iterator (readClaimed), allocate
// nothing either: Pebble pools its iterators, and the keys live in the
// Leased elements.
func TestClaimFromTablesAllocs(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ev := benchEvent()[:1]
	for range 3000 {
		if err := s.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flushStaged(); err != nil { // written, as a backlog is (stage.go)
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s.recent = newRecent()
	ls := make([]Leased, 0, 16)
	cycle := func() {
		ls, _ = s.Claim(ls, "crm", time.Now(), 16, time.Minute)
		if len(ls) != 16 {
			t.Fatalf("claimed %d, want 16", len(ls))
		}
		for i := range ls {
			s.Ack(ls[i].Ref)
		}
	}
	for range 20 {
		cycle()
	}
	hits := s.recent.hits
	if n := testing.AllocsPerRun(100, cycle); n > 0 {
		t.Fatalf("a claim of 16 from sstables, and their acks, allocates %.1f times", n)
	}
	if s.recent.hits != hits {
		t.Fatalf("the ring served %d claims; want every record read from Pebble", s.recent.hits-hits)
	}
}
