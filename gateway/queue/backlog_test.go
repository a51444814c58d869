package queue

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// A backlog read back from Pebble: claims of several deliveries whose
// records are no longer in the ring go through one iterator (readClaimed).
// Every claimed delivery must get its own record, whether it lies in an
// sstable or a memtable, whether the claim's sequences go forward or
// back (a retry due before the rest), and mixed with claims the ring
// still serves.
func TestClaimReadsBacklogFromTables(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	bodies := map[string]string{}
	enqueue := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			d := testDelivery(fmt.Sprintf("evt_%d.0", i), "crm", "r")
			d.Body = bytes.Repeat([]byte{byte('a' + i%26)}, 50+i*7%900)
			bodies[string(d.ID)] = string(d.Body)
			if err := s.Enqueue([]delivery.Delivery{d}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(got []Leased, want ...string) {
		t.Helper()
		if len(want) > 0 && fmt.Sprint(ids(got)) != fmt.Sprint(want) {
			t.Fatalf("claimed %v, want %v", ids(got), want)
		}
		for _, l := range got {
			if b, ok := bodies[string(l.Delivery.ID)]; !ok || string(l.Delivery.Body) != b || string(l.Delivery.Path) != "/crm/"+string(l.Delivery.ID) {
				t.Fatalf("delivery %s came back with path %q and a body of %d bytes, want its own (%d)", l.Delivery.ID, l.Delivery.Path, len(l.Delivery.Body), len(b))
			}
		}
	}
	// Each group written at once, as a backlog's are (stage.go), which
	// keeps the records still pending in the ring.
	written := func() {
		t.Helper()
		if err := s.flushStaged(); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(0, 300)
	written()
	if err := s.db.Flush(); err != nil { // the first 300 in an sstable
		t.Fatal(err)
	}
	enqueue(300, 350) // these in the memtable
	written()
	s.recent = newRecent()
	enqueue(350, 360) // and these in the ring too
	written()

	first, err := s.Claim(nil, "crm", time.Now(), 100, time.Minute)
	if err != nil || len(first) != 100 {
		t.Fatalf("claimed %d (%v), want 100", len(first), err)
	}
	check(first)
	// Two of them retried, due before everything else and in the order
	// 99, 49: the next claim seeks back.
	for i, due := range map[int]time.Time{99: time.Unix(1, 0), 49: time.Unix(2, 0)} {
		if err := s.Retry(first[i].Ref, due, delivery.Attempt{At: time.Now(), Status: 503}); err != nil {
			t.Fatal(err)
		}
	}
	retried, err := s.Claim(nil, "crm", time.Now(), 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	check(retried, "evt_99.0", "evt_49.0", "evt_100.0", "evt_101.0")
	rest, err := s.Claim(nil, "crm", time.Now(), 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 258 {
		t.Fatalf("claimed %d, want the other 258", len(rest))
	}
	check(rest)
	if s.recent.hits != 10 {
		t.Fatalf("the ring served %d claims, want the 10 enqueued after it was emptied", s.recent.hits)
	}
}

// Claims reading a backlog from Pebble while enqueues and flushes go on:
// four workers claim (16 at a time) and ack, one writer enqueues and
// flushes now and then, so memtables rotate and sstables appear under
// the claims' iterators. Every delivery is claimed once, with its own
// record.
func TestConcurrentClaimsReadBacklog(t *testing.T) {
	const before, during, workers = 3000, 3000, 4
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	body := func(i int) []byte {
		return bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i*37%2000)
	}
	enqueue := func(i int) error {
		d := testDelivery(fmt.Sprintf("evt_%d.0", i), "crm", "r")
		d.Body = body(i)
		return s.Enqueue([]delivery.Delivery{d})
	}
	for i := range before {
		if err := enqueue(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, workers+1)
	go func() {
		for i := before; i < before+during; i++ {
			if err := enqueue(i); err != nil {
				errs <- err
				return
			}
			if i%500 == 0 {
				if err := s.db.Flush(); err != nil {
					errs <- err
					return
				}
			}
		}
		errs <- nil
	}()
	var mu sync.Mutex
	seen := map[string]int{}
	for range workers {
		go func() {
			var ls []Leased
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
				mu.Lock()
				done := len(seen) == before+during
				mu.Unlock()
				if done {
					errs <- nil
					return
				}
				var err error
				if ls, err = s.Claim(ls, "crm", time.Now(), 16, time.Minute); err != nil {
					errs <- err
					return
				}
				for _, l := range ls {
					var i int
					if _, err := fmt.Sscanf(string(l.Delivery.ID), "evt_%d.0", &i); err != nil || !bytes.Equal(l.Delivery.Body, body(i)) {
						errs <- fmt.Errorf("delivery %q came back with a body of %d bytes, not its own", l.Delivery.ID, len(l.Delivery.Body))
						return
					}
					mu.Lock()
					seen[string(l.Delivery.ID)]++
					mu.Unlock()
					if err := s.Ack(l.Ref); err != nil {
						errs <- err
						return
					}
				}
				if len(ls) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			errs <- fmt.Errorf("not every delivery claimed in 30 s")
		}()
	}
	for range workers + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times, want once", id, n)
		}
	}
	if misses := before + during - int(s.recent.hits); misses < 1000 {
		t.Fatalf("only %d claims read Pebble; the test wants the ring's misses", misses)
	}
}
