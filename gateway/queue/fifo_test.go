package queue

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// ordered is a delivery for target crm in the sequence of key.
func ordered(id, key string) delivery.Delivery {
	d := testDelivery(id, "crm", "r")
	d.Ordered = true
	d.OrderKey = []byte(key)
	return d
}

func enqueue(t testing.TB, s *Store, ds ...delivery.Delivery) {
	t.Helper()
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
}

func claimAt(t testing.TB, s *Store, at time.Time) []Leased {
	t.Helper()
	got, err := s.Claim(nil, "crm", at, 100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func expect(t testing.TB, what string, got []Leased, want ...string) {
	t.Helper()
	if g := ids(got); !reflect.DeepEqual(g, want) && (len(g) != 0 || len(want) != 0) {
		t.Fatalf("%s: claimed %v, want %v", what, g, want)
	}
}

// TestFIFOSequences: deliveries with the same key are handed out one at a
// time in enqueue order; a head that is retried keeps its key waiting,
// even past the others' due times, while other keys and unordered
// deliveries flow; an ack or a dead letter lets the next one go.
func TestFIFOSequences(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	enqueue(t, s, ordered("evt_a1.0", "A"), ordered("evt_b1.0", "B"))
	enqueue(t, s, ordered("evt_a2.0", "A"), testDelivery("evt_u1.0", "crm", "r"), ordered("evt_a3.0", "A"), ordered("evt_b2.0", "B"))
	now := time.Now()

	got := claimAt(t, s, now)
	expect(t, "first claim", got, "evt_a1.0", "evt_b1.0", "evt_u1.0")
	if st := s.Stats()["crm"]; st.Depth != 6 || st.Leased != 3 {
		t.Fatalf("stats %+v, want depth 6 (3 waiting), leased 3", st)
	}
	a1, b1, u1 := got[0].Ref, got[1].Ref, got[2].Ref

	// A's head fails: it is due again in a second, and A waits for it.
	if err := s.Retry(a1, now.Add(time.Second), delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(b1); err != nil {
		t.Fatal(err)
	}
	got = claimAt(t, s, now)
	expect(t, "after A's head failed and B's was delivered", got, "evt_b2.0")
	if err := s.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	expect(t, "while A's head waits for its retry", claimAt(t, s, now.Add(999*time.Millisecond)))
	if due, ok := s.NextDue("crm"); !ok || due.Before(now.Add(time.Second)) {
		t.Fatalf("NextDue = %v %v: A's waiting deliveries must not count as due", due, ok)
	}

	got = claimAt(t, s, now.Add(time.Second))
	expect(t, "A's head, due again", got, "evt_a1.0")
	if got[0].Attempts != 1 {
		t.Fatalf("A's head has %d attempts, want 1", got[0].Attempts)
	}
	if err := s.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	got = claimAt(t, s, now.Add(time.Second))
	expect(t, "after A's head was delivered", got, "evt_a2.0")
	if err := s.Dead(got[0].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
		t.Fatal(err)
	}
	got = claimAt(t, s, now.Add(time.Second))
	expect(t, "after A's second was dead-lettered", got, "evt_a3.0")
	for _, ref := range []Ref{got[0].Ref, u1} {
		if err := s.Ack(ref); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats()["crm"]; st.Depth != 0 || st.Dead != 1 {
		t.Fatalf("stats %+v, want everything gone but one dead letter", st)
	}
}

// TestFIFOWholeTarget: without a key (OrderKey empty) the whole target is
// one sequence: one delivery at a time, in order, however many are asked
// for.
func TestFIFOWholeTarget(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("evt_w%d.0", i)
		enqueue(t, s, ordered(id, ""))
		want = append(want, id)
	}
	var order []string
	for range 5 {
		got := claimAt(t, s, time.Now())
		if len(got) != 1 {
			t.Fatalf("claimed %v: one at a time in a whole-target sequence", ids(got))
		}
		order = append(order, string(got[0].Delivery.ID))
		if err := s.Ack(got[0].Ref); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("delivered %v, want %v", order, want)
	}
}

// TestFIFORestartKeepsOrder: Close and Open keep every sequence, its
// order, its blocked head's attempts and due time; a replayed dead letter
// goes to the back of its sequence, before and after a restart.
func TestFIFORestartKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	enqueue(t, s, ordered("evt_a1.0", "A"), ordered("evt_a2.0", "A"), ordered("evt_b1.0", "B"))
	enqueue(t, s, ordered("evt_a3.0", "A"), ordered("evt_b2.0", "B"), ordered("evt_b3.0", "B"))
	now := time.Now()
	got := claimAt(t, s, now)
	expect(t, "heads", got, "evt_a1.0", "evt_b1.0")
	// A's head fails for an hour; B's head is dead-lettered.
	if err := s.Retry(got[0].Ref, now.Add(time.Hour), delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if err := s.Dead(got[1].Ref, delivery.Attempt{At: now, Status: 410}); err != nil {
		t.Fatal(err)
	}
	got = claimAt(t, s, now)
	expect(t, "B goes on", got, "evt_b2.0")
	if err := s.Replay("evt_b1.0"); err != nil {
		t.Fatal(err)
	}
	s.Close() // B2 was leased: ready again after the restart

	s = openTest(t, dir, Options{})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Depth != 6 || st.Leased != 0 {
		t.Fatalf("stats after reopen %+v, want 6 pending", st)
	}
	got = claimAt(t, s, now)
	expect(t, "after the restart, A still waits for its head", got, "evt_b2.0")
	if err := s.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 10 {
		got = claimAt(t, s, now.Add(time.Hour))
		if len(got) == 0 {
			break
		}
		for _, l := range got {
			order = append(order, string(l.Delivery.ID))
			if string(l.Delivery.ID) == "evt_a1.0" && l.Attempts != 1 {
				t.Errorf("A's head lost its attempt across the restart: %d", l.Attempts)
			}
			if err := s.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One claim round per step; within a round heads come by due time.
	want := []string{"evt_b3.0", "evt_a1.0", "evt_a2.0", "evt_b1.0", "evt_a3.0"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("delivered %v, want %v (A in order; the replayed B1 after B3)", order, want)
	}
}

// TestFIFOConcurrentEnqueue: concurrent Enqueue calls that commit out of
// turn still build the sequence in sequence-number order, the order a
// restart rebuilds: delivered Refs only ever grow, before and after a
// restart.
func TestFIFOConcurrentEnqueue(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncAlways})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if err := s.Enqueue([]delivery.Delivery{ordered(fmt.Sprintf("evt_c%d_%d.0", w, i), "K")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	last := uint64(0) // the last sequence number claimed
	n := 0
	drain := func(limit int) {
		for ; limit > 0; limit-- {
			got := claimAt(t, s, time.Now())
			if len(got) == 0 {
				return
			}
			if len(got) != 1 || got[0].seq <= last {
				t.Fatalf("claimed %d deliveries, the first %s (seq %d) after seq %d: want one at a time, in order", len(got), got[0].Delivery.ID, got[0].seq, last)
			}
			last = got[0].seq
			n++
			if err := s.Ack(got[0].Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	drain(160)
	s.Close()
	s = openTest(t, dir, Options{})
	defer s.Close()
	drain(1000)
	if n != 320 {
		t.Fatalf("delivered %d of 320", n)
	}
}

// TestFIFOWaitingRefsRefused: a delivery waiting behind its head was never
// handed out; its Ref is refused by every lease call (a stale caller must
// not jump the queue).
func TestFIFOWaitingRefsRefused(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	enqueue(t, s, ordered("evt_h.0", "A"), ordered("evt_w.0", "A"))
	got := claimAt(t, s, time.Now())
	expect(t, "head", got, "evt_h.0")
	waiting := got[0].Ref + 1
	for name, call := range map[string]func() error{
		"ack":     func() error { return s.Ack(waiting) },
		"retry":   func() error { return s.Retry(waiting, time.Now(), delivery.Attempt{}) },
		"dead":    func() error { return s.Dead(waiting, delivery.Attempt{}) },
		"release": func() error { return s.Release(waiting) },
	} {
		if err := call(); !errors.Is(err, ErrNotLeased) {
			t.Errorf("%s of a waiting delivery: %v, want ErrNotLeased", name, err)
		}
	}
	if err := s.Release(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	expect(t, "released head", claimAt(t, s, time.Now()), "evt_h.0")
}

// TestFIFOHelperProcess is the child of TestFIFOCrashKeepsOrder: four
// writers, one per key, enqueue ordered deliveries (sync "always") and
// print "enq <id>" once each is stored; a worker claims heads, fails every
// third delivery's first attempt (retried 20ms later) and acks the rest,
// printing "ack <id>". It runs until killed.
func TestFIFOHelperProcess(t *testing.T) {
	dir := os.Getenv("HOOKGATE_QUEUE_FIFO_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestFIFOCrashKeepsOrder")
	}
	s, err := Open(Options{Path: dir, Sync: SyncAlways})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		fmt.Fprintln(out, line)
		out.Flush()
		mu.Unlock()
	}
	for k := range 4 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("evt_K%d_%d.0", k, i)
				if err := s.Enqueue([]delivery.Delivery{ordered(id, "K"+strconv.Itoa(k))}); err != nil {
					say("error: " + err.Error())
					os.Exit(2)
				}
				say("enq " + id)
			}
		}()
	}
	var ls []Leased
	for {
		ls, _ = s.Claim(ls, "crm", time.Now(), 100, time.Minute)
		for _, l := range ls {
			id := string(l.Delivery.ID)
			_, i := keyIndex(id)
			if i%3 == 0 && l.Attempts == 0 {
				// Its key waits 20ms for it: a backlog builds up behind.
				s.Retry(l.Ref, time.Now().Add(20*time.Millisecond), delivery.Attempt{At: time.Now(), Status: 503})
				continue
			}
			if err := s.Ack(l.Ref); err == nil {
				say("ack " + id)
			}
		}
		if len(ls) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// keyIndex splits "evt_K<k>_<i>.0" into its key and index.
func keyIndex(id string) (string, int) {
	rest := strings.TrimSuffix(strings.TrimPrefix(id, "evt_"), ".0")
	k, i, _ := strings.Cut(rest, "_")
	n, err := strconv.Atoi(i)
	if err != nil {
		return "", -1
	}
	return k, n
}

// TestFIFOCrashKeepsOrder kills (SIGKILL) a process that is enqueueing and
// delivering ordered deliveries mid-sequence, then opens its store: every
// acknowledged delivery not acked is there, and each key's deliveries come
// out one at a time, in enqueue order, with no gap, going on from where
// the child was. Acks are not fsynced, so the crash may lose the last few
// (those after the last synced write): the deliveries they acked come
// again first, in their order, never an older one after a newer one.
func TestFIFOCrashKeepsOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd, stdout := startHelper(t, "TestFIFOHelperProcess", "HOOKGATE_QUEUE_FIFO_CRASH_DIR="+dir)
	enqueued := map[string]bool{}
	lastAck := map[string]int{} // per key: the highest index the child acked
	acks := 0
	read := func(line string) {
		what, id, _ := strings.Cut(line, " ")
		k, i := keyIndex(id)
		switch what {
		case "enq":
			enqueued[id] = true
		case "ack":
			if prev, ok := lastAck[k]; ok && i <= prev {
				t.Errorf("child acked %s after index %d of its key", id, prev)
			}
			lastAck[k] = i
			acks++
		default:
			t.Fatalf("helper: %s", line)
		}
	}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(20 * time.Second) // a failure timeout
	for sc.Scan() {
		read(sc.Text())
		if (len(enqueued) >= 400 && acks >= 200) || time.Now().After(deadline) {
			cmd.Process.Kill() // SIGKILL: no Close, no deferred anything
			break
		}
	}
	for sc.Scan() { // lines written before the kill
		read(sc.Text())
	}
	cmd.Wait()
	if len(enqueued) < 400 || acks < 200 {
		t.Fatalf("the child enqueued %d and acked %d before the deadline", len(enqueued), acks)
	}

	s := openTest(t, dir, Options{})
	defer s.Close()
	first := map[string]int{} // per key: the first index delivered after the restart
	next := map[string]int{}  // per key: the index the next one must have
	drained := 0
	for round := 0; ; round++ {
		got := claimAt(t, s, time.Now().Add(time.Minute))
		if len(got) == 0 {
			break
		}
		seen := map[string]bool{}
		for _, l := range got {
			id := string(l.Delivery.ID)
			k, i := keyIndex(id)
			if seen[k] {
				t.Fatalf("round %d: two deliveries of key %s claimed at once: %v", round, k, ids(got))
			}
			seen[k] = true
			if n, ok := next[k]; ok && i != n {
				t.Fatalf("round %d: %s after index %d of its key: out of order or a gap", round, id, n-1)
			}
			if _, ok := first[k]; !ok {
				first[k] = i
			}
			next[k] = i + 1
			drained++
			if err := s.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	lost := 0
	for id := range enqueued {
		k, i := keyIndex(id)
		acked, ok := lastAck[k]
		if !ok {
			acked = -1
		}
		if f, ok := first[k]; i > acked && (!ok || i < f || i >= next[k]) {
			lost++
		}
	}
	if lost != 0 {
		t.Fatalf("%d acknowledged deliveries lost after SIGKILL", lost)
	}
	for k, f := range first {
		if acked, ok := lastAck[k]; ok && f > acked+1 {
			t.Errorf("key %s resumed at index %d, but the child acked only up to %d", k, f, acked)
		}
	}
	t.Logf("child enqueued %d, acked %d; %d delivered after the restart, resuming at %v (child acked up to %v)", len(enqueued), acks, drained, first, lastAck)
}
