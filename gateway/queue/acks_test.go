package queue

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/delivery"
)

// TestAcksReachTheLogWithoutClose: an Ack that finds no other Ack
// committing commits the queued deletes itself, so acks made one at a
// time are all in the log when the last one returns, with no Close: a
// copy of the directory taken then (as a crash would leave it, once the
// log is synced) holds none of the deliveries.
func TestAcksReachTheLogWithoutClose(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	ls := enqueueAndClaim(t, s, 300)
	// Acked in reverse, so the batch's sorting is what puts the keys in order.
	for i := len(ls) - 1; i >= 0; i-- {
		if err := s.Ack(ls[i].Ref); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []byte{kindRecord, kindPending} {
		if got := countKeys(t, s.db, kind); got != 0 {
			t.Fatalf("%d %c keys left after every delivery was acked", got, kind)
		}
	}
	if err := s.syncLog(); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, copyDir(t, dir), Options{})
	defer c.Close()
	if st := c.Stats()["crm"]; st.Depth != 0 {
		t.Fatalf("a copy of the store after the acks has %d pending, want 0", st.Depth)
	}
}

// TestConcurrentAcksAllCommitted: acks from many workers at once, which
// mostly ride on each other's commits, all reach the store: right away,
// or (the few an Ack left after maxAckRounds) by the store's next tick.
func TestConcurrentAcksAllCommitted(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	ls := enqueueAndClaim(t, s, 400)
	var wg sync.WaitGroup
	errs := make(chan error, len(ls))
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ls); i += 40 {
				if err := s.Ack(ls[i].Ref); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * spaceEvery)
	for countKeys(t, s.db, kindRecord)+countKeys(t, s.db, kindPending) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("records or pending states of acked deliveries still stored after %v", 5*spaceEvery)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func enqueueAndClaim(t *testing.T, s *Store, n int) []Leased {
	t.Helper()
	for i := range n {
		if err := s.Enqueue([]delivery.Delivery{testDelivery(fmt.Sprintf("evt_%d.0", i), "crm", "r")}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.Claim(nil, "crm", time.Now(), n, time.Minute)
	if err != nil || len(ls) != n {
		t.Fatalf("claimed %d, %v", len(ls), err)
	}
	return ls
}

// TestAckDeletesInKeyOrder: a batch of acks deletes the records, then the
// pending states, then the attempts, each in sequence order, so the
// memtable inserts walk the skip list forwards.
func TestAckDeletesInKeyOrder(t *testing.T) {
	quiet := pebbleLogger{&Store{log: slog.New(slog.DiscardHandler)}}
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.NewBatch()
	defer b.Close()
	// 9 was replayed (its p key written once), 3 never retried (no p
	// key), 5 retried twice (its p key rewritten).
	appendAckDeletes(b, []ackedEntry{{seq: 9, pkey: pkeyOnce}, {seq: 3}, {seq: 5, attempts: 2, pkey: pkeyRewritten}, {seq: 7, attempts: 1, pkey: pkeyOnce}})
	var got []string
	r := b.Reader()
	for {
		kind, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s %c%x", kind, k[0], k[1:]))
	}
	want := []string{
		"SINGLEDEL d0000000000000003", "SINGLEDEL d0000000000000005", "SINGLEDEL d0000000000000007", "SINGLEDEL d0000000000000009",
		"DEL p0000000000000005", "SINGLEDEL p0000000000000007", "SINGLEDEL p0000000000000009",
		"SINGLEDEL a000000000000000500000000", "SINGLEDEL a000000000000000500000001", "SINGLEDEL a000000000000000700000000",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batch:\n%q\nwant\n%q", got, want)
	}
}

// countKeys counts the live keys of one kind.
func countKeys(t *testing.T, db *pebble.DB, kind byte) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}
