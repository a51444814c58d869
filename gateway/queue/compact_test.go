package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// tables flushes the store's memtable and counts its tables.
func tables(t *testing.T, s *Store) int64 {
	t.Helper()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	m := s.db.Metrics()
	var n int64
	for i := range m.Levels {
		n += m.Levels[i].TablesCount
	}
	return n
}

// TestAckedLeavesNothingToCompact: deliveries acked on their first
// attempt leave nothing on disk once their memtable is flushed. Their keys
// are written once, so the ack removes them with single deletes, which
// cancel against the write they delete when both meet in the memtable: a
// queue whose deliveries go out within a memtable's lifetime flushes
// (almost) nothing and has no tombstones to compact, where plain deletes
// leave one per key, flushed to L0 and rewritten level by level.
func TestAckedLeavesNothingToCompact(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	// A delivery still pending after a flush, as in any store that had a
	// backlog: its table spans every later record key, so Pebble cannot
	// drop a plain delete's tombstone at the flush for lack of anything
	// beneath it.
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_old.0", "slow", "r")}); err != nil {
		t.Fatal(err)
	}
	if err := s.flushStaged(); err != nil { // as if its generation's tick had come
		t.Fatal(err)
	}
	before := tables(t, s)
	if before == 0 {
		t.Fatal("the pending delivery was not flushed to a table")
	}
	const n = 500
	for i := range n {
		d := testDelivery(fmt.Sprintf("evt_%04d.0", i), "crm", "r")
		if err := s.Enqueue([]delivery.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	// Written, as deliveries acked later than their staging are (a
	// delivery acked while staged is never written: stage_test.go).
	if err := s.flushStaged(); err != nil {
		t.Fatal(err)
	}
	ls, err := s.Claim(nil, "crm", time.Now(), n, time.Minute)
	if err != nil || len(ls) != n {
		t.Fatalf("claimed %d, %v", len(ls), err)
	}
	for i := range ls {
		if err := s.Ack(ls[i].Ref); err != nil {
			t.Fatal(err)
		}
	}
	// An Ack alone commits its deletes at once (acks.go); this commits
	// any the leaders' rounds left, so every delete is in the memtable
	// before the flush (a flush that came first would write the records,
	// as it does for any delivery acked late).
	if err := s.flushAcks(); err != nil {
		t.Fatal(err)
	}
	if after := tables(t, s); after != before {
		t.Fatalf("%d deliveries acked on their first attempt left %d new tables after the flush: want none", n, after-before)
	}
}

// TestAckAfterRetryAndReplayStaysGone: a delivery whose pending state was
// written more than once (a retry rewrites it, a replay writes it again)
// must stay gone once acked, through a flush and a restart: a single
// delete there would only cancel the latest write and let an older one
// come back.
func TestAckAfterRetryAndReplayStaysGone(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_r.0", "crm", "r"), testDelivery("evt_d.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ls, _ := s.Claim(nil, "crm", now, 2, time.Minute)
	if len(ls) != 2 {
		t.Fatalf("claimed %d", len(ls))
	}
	// evt_r: two retries, then acked.
	if err := s.Retry(ls[0].Ref, now, delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	// evt_d: retried, dead, replayed, retried again, then acked.
	if err := s.Retry(ls[1].Ref, now, delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	ls, _ = s.Claim(ls, "crm", now, 2, time.Minute)
	if len(ls) != 2 {
		t.Fatalf("claimed %d after the retries", len(ls))
	}
	for i := range ls {
		switch string(ls[i].Delivery.ID) {
		case "evt_r.0":
			if err := s.Retry(ls[i].Ref, now, delivery.Attempt{At: now, Status: 500}); err != nil {
				t.Fatal(err)
			}
		case "evt_d.0":
			if err := s.Dead(ls[i].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Replay("evt_d.0"); err != nil {
		t.Fatal(err)
	}
	ls, _ = s.Claim(ls, "crm", time.Now(), 2, time.Minute)
	if len(ls) != 2 {
		t.Fatalf("claimed %d after the replay", len(ls))
	}
	for i := range ls {
		if string(ls[i].Delivery.ID) == "evt_d.0" {
			if err := s.Retry(ls[i].Ref, now, delivery.Attempt{At: now, Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ls2, _ := s.Claim(nil, "crm", time.Now(), 2, time.Minute)
	for _, l := range append(ls, ls2...) {
		if err := s.Ack(l.Ref); err != nil && string(l.Delivery.ID) != "evt_d.0" {
			t.Fatal(err)
		}
	}
	if st := s.Stats()["crm"]; st.Depth != 0 || st.Dead != 0 {
		t.Fatalf("before the restart: %+v, want nothing pending or dead", st)
	}
	tables(t, s) // the acks and the writes they cancel meet in a flush
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Sync: SyncBatch})
	tables(t, s)
	s.Close()
	s = openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Depth != 0 || st.Dead != 0 {
		t.Fatalf("after a flush and a restart: %+v, want nothing pending or dead", st)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Depth != 0 || st.Dead != 0 {
		t.Fatalf("after a compaction and a restart: %+v, want nothing pending or dead", st)
	}
}

// TestAckAfterReplayStaysGone: a delivery dead-lettered on its first
// attempt, replayed and acked on the next (no retry in between, so the
// ack single-deletes a pending state written for the second time) stays
// gone after a flush, a compaction and restarts.
func TestAckAfterReplayStaysGone(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_x.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ls, _ := s.Claim(nil, "crm", now, 1, time.Minute)
	if len(ls) != 1 {
		t.Fatalf("claimed %d", len(ls))
	}
	if err := s.Dead(ls[0].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
		t.Fatal(err)
	}
	tables(t, s) // the first pending state and its delete reach a table
	if err := s.Replay("evt_x.0"); err != nil {
		t.Fatal(err)
	}
	ls, _ = s.Claim(ls, "crm", time.Now(), 1, time.Minute)
	if len(ls) != 1 {
		t.Fatalf("claimed %d after the replay", len(ls))
	}
	if err := s.Ack(ls[0].Ref); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"flush", "compaction"} {
		if step == "flush" {
			tables(t, s)
		} else if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, dir, Options{Sync: SyncBatch})
		if st := s.Stats()["crm"]; st.Depth != 0 || st.Dead != 0 {
			t.Fatalf("after a %s and a restart: %+v, want nothing pending or dead", step, st)
		}
	}
	s.Close()
}
