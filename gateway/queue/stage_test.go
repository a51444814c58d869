package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hookgate/hookgate/delivery"
)

// onDisk reports whether the record of seq is in Pebble.
func onDisk(t *testing.T, s *Store, seq uint64) bool {
	t.Helper()
	k := keyOf(kindRecord, seq)
	_, closer, err := s.db.Get(k[:])
	if err == pebble.ErrNotFound {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	closer.Close()
	return true
}

func stageCounts(s *Store) (staged, written uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stage.staged, s.stage.written
}

// TestStagedAckedIsNeverWritten: with sync "batch", a delivery acked
// before its generation is written leaves nothing in Pebble, not even a
// delete; one still pending is written.
func TestStagedAckedIsNeverWritten(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const n = 20
	for i := range n {
		if err := s.Enqueue([]delivery.Delivery{testDelivery(fmt.Sprintf("evt_%02d.0", i), "crm", "r")}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.Claim(nil, "crm", time.Now(), n, time.Minute)
	if err != nil || len(ls) != n {
		t.Fatalf("claimed %d, %v", len(ls), err)
	}
	before := s.db.Metrics().WAL.BytesIn
	for i := range ls[:n/2] {
		if err := s.Ack(ls[i].Ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flushStaged(); err != nil {
		t.Fatal(err)
	}
	if staged, written := stageCounts(s); staged != n || written != n/2 {
		t.Fatalf("staged %d, written %d: want %d and %d", staged, written, n, n/2)
	}
	for i, l := range ls {
		if got, want := onDisk(t, s, l.seq), i >= n/2; got != want {
			t.Fatalf("delivery %d (acked: %v) on disk: %v", i, !want, got)
		}
	}
	// What went to the log is the pending half's records alone: no
	// deletes for the acked half.
	logged := s.db.Metrics().WAL.BytesIn - before
	var recs uint64
	for _, l := range ls[n/2:] {
		recs += uint64(recordLen(&l.Delivery))
	}
	if logged < recs || logged > 2*recs {
		t.Fatalf("%d bytes logged for %d bytes of pending records", logged, recs)
	}
}

// TestStagedWrittenWithinTwoTicks: a delivery nobody acks is written by
// the staging's own ticks, with no other call on the store.
func TestStagedWrittenWithinTwoTicks(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_1.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, "the staged delivery written", func() bool {
		_, w := stageCounts(s)
		return w == 1
	})
	if took := time.Since(start); took < stageEvery {
		t.Fatalf("written after %v: want at least one tick (%v) to be acked first", took, stageEvery)
	}
	ls, err := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
	if err != nil || len(ls) != 1 || !onDisk(t, s, ls[0].seq) {
		t.Fatalf("claim: %v, %d deliveries", err, len(ls))
	}
	// The staging sleeps again once nothing is staged.
	waitUntil(t, "the staging idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.stage.ticking
	})
}

// TestStagedRetryAndDeadWriteTheRecordFirst: a Retry or a dead letter of
// a staged delivery writes its record before its own keys, so a restart
// finds the retried delivery whole and the dead letter with its body.
func TestStagedRetryAndDeadWriteTheRecordFirst(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	for _, id := range []string{"evt_retry.0", "evt_dead.0"} {
		if err := s.Enqueue([]delivery.Delivery{testDelivery(id, "crm", "r")}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.Claim(nil, "crm", time.Now(), 2, time.Minute)
	if err != nil || len(ls) != 2 {
		t.Fatalf("claim: %v, %d deliveries", err, len(ls))
	}
	now := time.Now()
	if err := s.Retry(ls[0].Ref, now, delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if !onDisk(t, s, ls[0].seq) {
		t.Fatal("retried, but its record is not written")
	}
	if err := s.Dead(ls[1].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	got, err := s.Claim(nil, "crm", time.Now().Add(time.Second), 10, time.Minute)
	if err != nil || len(got) != 1 || string(got[0].Delivery.ID) != "evt_retry.0" || got[0].Attempts != 1 {
		t.Fatalf("after a restart: %v, %+v", err, got)
	}
	if want := `{"id":"evt_retry.0"}`; string(got[0].Delivery.Body) != want {
		t.Fatalf("retried body %q, want %q", got[0].Delivery.Body, want)
	}
	dl, _, err := s.DeadList(Filter{}, "", 10)
	if err != nil || len(dl) != 1 || string(dl[0].Delivery.ID) != "evt_dead.0" {
		t.Fatalf("dead letters: %v, %+v", err, dl)
	}
	if want := `{"id":"evt_dead.0"}`; string(dl[0].Delivery.Body) != want {
		t.Fatalf("dead letter's body %q, want %q", dl[0].Delivery.Body, want)
	}
}

// TestStagedClaimAfterItsWrite: a claim reads a staged record from its
// generation; one whose generation was written since the claim took its
// place reads the ring, and without the ring, Pebble.
func TestStagedClaimAfterItsWrite(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_1.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	var e *entry
	for _, x := range s.entries {
		e = x
	}
	l := Leased{seq: e.seq, stRec: e.stRec, stGen: e.stGen, stEpoch: e.stEpoch}
	s.mu.Unlock()
	if l.stGen == nil {
		t.Fatal("enqueued with sync batch, but not staged")
	}
	hits := s.recent.hits

	// Its generation written and emptied while the claim was on its way.
	if err := s.flushStaged(); err != nil {
		t.Fatal(err)
	}
	got := s.readClaimed([]Leased{l}, time.Now())
	if len(got) != 1 || string(got[0].Delivery.Body) != `{"id":"evt_1.0"}` {
		t.Fatalf("read after its generation was written: %+v", got)
	}
	if s.recent.hits != hits+1 {
		t.Fatal("not read from the ring")
	}

	s.recent.mu.Lock()
	clear(s.recent.slots) // as if newer records had overwritten it
	s.recent.mu.Unlock()
	got = s.readClaimed([]Leased{l}, time.Now())
	if len(got) != 1 || string(got[0].Delivery.Body) != `{"id":"evt_1.0"}` {
		t.Fatalf("read from Pebble: %+v", got)
	}
}

// TestStagedRetryAndDeadWhileWritten: a Retry or a dead letter of a
// delivery that a rotation has taken for writing, its commit not yet
// done, waits for that commit: a dead letter is made from the record,
// and a pending state committed before its record would outlive it in a
// crash. A large staged backlog makes the write slow enough to land in.
func TestStagedRetryAndDeadWhileWritten(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	fill := make([]delivery.Delivery, 100)
	for i := range fill {
		fill[i] = testDelivery(fmt.Sprintf("evt_f%d.0", i), "bulk", "r")
		fill[i].Body = make([]byte, 4000)
	}
	for iter := range 20 {
		for range 4 { // about 1.6 MB staged
			if err := s.Enqueue(fill); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Enqueue([]delivery.Delivery{testDelivery(fmt.Sprintf("evt_%d.0", iter), "crm", "r")}); err != nil {
			t.Fatal(err)
		}
		ls, err := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
		if err != nil || len(ls) != 1 {
			t.Fatalf("claim: %v, %d", err, len(ls))
		}
		seq := ls[0].seq
		done := make(chan error, 1)
		go func() { done <- s.flushStaged() }()
		for staged := true; staged; { // until a rotation took it for writing
			s.mu.Lock()
			staged = s.entries[seq].staged
			s.mu.Unlock()
		}
		now := time.Now()
		if iter%2 == 0 {
			if err := s.Dead(ls[0].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
				t.Fatalf("dead letter of a delivery being written: %v", err)
			}
		} else {
			if err := s.Retry(ls[0].Ref, now.Add(time.Hour), delivery.Attempt{At: now}); err != nil {
				t.Fatal(err)
			}
			if !onDisk(t, s, seq) {
				t.Fatal("a Retry's pending state committed before its record")
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for {
			b, err := s.Claim(nil, "bulk", now, 500, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				break
			}
			for i := range b {
				if err := s.Ack(b[i].Ref); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestStagedBurstAndClose: more than two generations' worth of
// deliveries enqueued at once (each full generation writes the one
// before it) all survive a Close and a restart, with their bodies.
func TestStagedBurstAndClose(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	body := bytes.Repeat([]byte("x"), 4000)
	n := 3 * stageBytes / len(body)
	for i := range n {
		d := testDelivery(fmt.Sprintf("evt_%05d.0", i), "crm", "r")
		d.Body = body
		if err := s.Enqueue([]delivery.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	if _, w := stageCounts(s); w == 0 {
		t.Fatal("a burst of three generations wrote none before Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	ls, err := s.Claim(nil, "crm", time.Now().Add(time.Second), n+1, time.Minute)
	if err != nil || len(ls) != n {
		t.Fatalf("after a restart: %d of %d, %v", len(ls), n, err)
	}
	for _, l := range ls {
		if !bytes.Equal(l.Delivery.Body, body) {
			t.Fatalf("%s: body of %d bytes, want %d", l.Delivery.ID, len(l.Delivery.Body), len(body))
		}
	}
}

// TestHelperStagedProcess is the child of TestStagedCrash: with sync
// "batch" it enqueues deliveries and acks every other one, waits longer
// than the staging and the log's fsync take, prints the pending ids and
// waits to be killed.
func TestHelperStagedProcess(t *testing.T) {
	dir := os.Getenv("HOOKGATE_QUEUE_STAGED_DIR")
	if dir == "" {
		t.Skip("helper process for TestStagedCrash")
	}
	s, err := Open(Options{Path: dir, Sync: SyncBatch})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var pending []string
	for i := range 200 {
		id := fmt.Sprintf("evt_%03d.0", i)
		if err := s.Enqueue([]delivery.Delivery{testDelivery(id, "crm", "r")}); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		ls, err := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
		if err != nil || len(ls) != 1 {
			fmt.Println("error: claim", err, len(ls))
			os.Exit(2)
		}
		if i%2 == 0 {
			if err := s.Ack(ls[0].Ref); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
		} else {
			pending = append(pending, id)
		}
	}
	time.Sleep(2*stageEvery + batchSyncEvery + 50*time.Millisecond)
	out := bufio.NewWriter(os.Stdout)
	for _, id := range pending {
		fmt.Fprintln(out, id)
	}
	fmt.Fprintln(out, "settled")
	out.Flush()
	time.Sleep(time.Minute) // never Close: the parent kills us first
	os.Exit(0)
}

// TestStagedCrash: with sync "batch", what was acknowledged longer ago
// than the staging and the fsync take survives a kill -9, and what was
// acked while staged never comes back.
func TestStagedCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd, stdout := startHelper(t, "TestHelperStagedProcess", "HOOKGATE_QUEUE_STAGED_DIR="+dir)
	want := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	settled := false
	for sc.Scan() {
		line := sc.Text()
		if line == "settled" {
			settled = true
			break
		}
		if !strings.HasPrefix(line, "evt_") {
			t.Fatalf("helper: %s", line)
		}
		want[line] = true
	}
	if !settled {
		t.Fatal("the helper ended before it settled")
	}
	cmd.Process.Kill() // SIGKILL: no Close
	cmd.Wait()

	s := openTest(t, dir, Options{Sync: SyncBatch})
	defer s.Close()
	ls, err := s.Claim(nil, "crm", time.Now().Add(time.Second), 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range ls {
		got[string(l.Delivery.ID)] = true
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("%s, pending and acknowledged well before the kill, was lost", id)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d deliveries after the restart, want the %d pending: acked ones came back", len(got), len(want))
	}
}

// TestStagedUnderLoad: senders enqueue while workers claim, some acking
// at once and some after the staging's ticks (so some records are read
// from their generation, some after it was written), and every delivery
// is claimed with its own body and acked exactly once.
func TestStagedUnderLoad(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const senders, per = 4, 1500
	body := func(id string) []byte { return append(bytes.Repeat([]byte("b"), 1500), id...) }
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("evt_%d_%d.0", g, i)
				d := testDelivery(id, "crm", "r")
				d.Body = body(id)
				if err := s.Enqueue([]delivery.Delivery{d}); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for w := range 8 {
		wg.Go(func() {
			var ls []Leased
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(seen) == senders*per
				mu.Unlock()
				if done {
					return
				}
				var err error
				ls, err = s.Claim(ls, "crm", time.Now(), 16, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ls) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				if w%2 == 1 {
					time.Sleep(time.Duration(w) * 5 * time.Millisecond)
				}
				for _, l := range ls {
					id := string(l.Delivery.ID)
					if !bytes.Equal(l.Delivery.Body, body(id)) {
						t.Errorf("%s: body %.40q…", id, l.Delivery.Body)
					}
					mu.Lock()
					seen[id]++
					mu.Unlock()
					if err := s.Ack(l.Ref); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != senders*per {
		t.Fatalf("%d of %d deliveries claimed; %+v", len(seen), senders*per, s.Stats())
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
	staged, written := stageCounts(s)
	t.Logf("staged %d, written %d", staged, written)
}
