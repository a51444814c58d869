package queue

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

func testDelivery(id, target, route string) delivery.Delivery {
	return delivery.Delivery{
		ID:      []byte(id),
		EventID: []byte(strings.SplitN(id, ".", 2)[0]),
		Route:   route,
		Target:  target,
		Method:  []byte("POST"),
		Path:    []byte("/crm/" + id),
		Query:   []delivery.KV{{Key: []byte("k"), Value: []byte("v")}},
		Headers: []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}},
		Body:    []byte(`{"id":"` + id + `"}`),
	}
}

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	opts.Path = dir
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(ls []Leased) []string {
	var out []string
	for _, l := range ls {
		out = append(out, string(l.Delivery.ID))
	}
	return out
}

func TestEnqueueClaimAck(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	in := []delivery.Delivery{
		testDelivery("evt_1.0", "crm", "howxm"),
		testDelivery("evt_1.1", "sms", "howxm"),
		testDelivery("evt_1.2", "crm", "howxm"),
	}
	if err := s.Enqueue(in); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got, err := s.Claim(nil, "crm", now, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_1.0", "evt_1.2"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("claimed %v, want %v", ids(got), want)
	}
	if !reflect.DeepEqual(got[1].Delivery, in[2]) {
		t.Fatalf("decoded %+v\nwant    %+v", got[1].Delivery, in[2])
	}
	// Leased deliveries are not handed out twice.
	if again, _ := s.Claim(nil, "crm", now, 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed leased deliveries again: %v", ids(again))
	}
	if err := s.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(got[0].Ref); !errors.Is(err, ErrNotLeased) {
		t.Fatalf("second ack: %v, want ErrNotLeased", err)
	}
	if err := s.Release(got[1].Ref); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Claim(got, "crm", now, 10, time.Minute)
	if want := []string{"evt_1.2"}; !reflect.DeepEqual(ids(again), want) {
		t.Fatalf("after release claimed %v, want %v", ids(again), want)
	}
	st := s.Stats()
	if st["crm"].Depth != 1 || st["crm"].Leased != 1 || st["sms"].Depth != 1 || st["crm"].Bytes <= 0 {
		t.Fatalf("stats %+v", st)
	}
	if st["sms"].OldestAge <= 0 || st["sms"].OldestAge > time.Minute {
		t.Fatalf("oldest age %v", st["sms"].OldestAge)
	}
}

func TestNotBeforeAndLeaseExpiry(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	now := time.Now()
	d := testDelivery("evt_2.0", "crm", "r")
	d.NotBefore = now.Add(time.Hour).UnixNano()
	if err := s.Enqueue([]delivery.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{}) // a restart keeps the schedule
	defer s.Close()
	if got, _ := s.Claim(nil, "crm", now.Add(59*time.Minute), 10, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %v before its not-before time", ids(got))
	}
	due, ok := s.NextDue("crm")
	if !ok || due.UnixNano() != d.NotBefore {
		t.Fatalf("NextDue = %v %v, want %v", due, ok, time.Unix(0, d.NotBefore))
	}
	at := now.Add(time.Hour)
	got, _ := s.Claim(nil, "crm", at, 10, time.Minute)
	if len(got) != 1 {
		t.Fatalf("claimed %d at the not-before time, want 1", len(got))
	}
	// The lease runs out: the delivery is claimable again.
	if again, _ := s.Claim(nil, "crm", at.Add(59*time.Second), 10, time.Minute); len(again) != 0 {
		t.Fatal("claimed within the lease")
	}
	if again, _ := s.Claim(nil, "crm", at.Add(time.Minute), 10, time.Minute); len(again) != 1 {
		t.Fatal("not claimable after the lease ran out")
	}
}

func TestRetryDeadReplay(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if err := s.Enqueue([]delivery.Delivery{
		testDelivery("evt_3.0", "crm", "howxm"),
		testDelivery("evt_3.1", "sms", "howxm"),
		testDelivery("evt_4.0", "crm", "smartsupp"),
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got, _ := s.Claim(nil, "crm", now, 10, time.Minute)
	if len(got) != 2 {
		t.Fatalf("claimed %d", len(got))
	}
	a1 := delivery.Attempt{At: now, Duration: 3 * time.Millisecond, Status: 503, Error: "status 503", Body: []byte(strings.Repeat("x", 600))}
	if err := s.Retry(got[0].Ref, now.Add(time.Second), a1); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Claim(nil, "crm", now.Add(999*time.Millisecond), 10, time.Minute); len(again) != 0 {
		t.Fatal("retry claimed before its due time")
	}
	again, _ := s.Claim(nil, "crm", now.Add(time.Second), 10, time.Minute)
	if len(again) != 1 || again[0].Attempts != 1 || string(again[0].Delivery.ID) != "evt_3.0" {
		t.Fatalf("after retry claimed %v attempts %v", ids(again), again)
	}
	a2 := delivery.Attempt{At: now.Add(time.Second), Status: 404, Error: "status 404"}
	if err := s.Dead(again[0].Ref, a2); err != nil {
		t.Fatal(err)
	}
	if err := s.Dead(got[1].Ref, delivery.Attempt{At: now, Status: 400}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Dead letters survive a restart.
	s = openTest(t, dir, Options{})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Dead != 2 || st.Depth != 0 {
		t.Fatalf("crm stats after reopen %+v", st)
	}
	dl, next, err := s.DeadList(Filter{Route: "howxm"}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || next != "" || string(dl[0].Delivery.ID) != "evt_3.0" {
		t.Fatalf("dead list %+v next %q", dl, next)
	}
	if len(dl[0].Attempts) != 2 || dl[0].Attempts[0].Status != 503 || len(dl[0].Attempts[0].Body) != MaxAttemptBody ||
		dl[0].Attempts[0].Duration != 3*time.Millisecond || dl[0].Attempts[1].Status != 404 || !dl[0].Attempts[0].At.Equal(now) {
		t.Fatalf("attempts %+v", dl[0].Attempts)
	}
	if dl[0].Attempts[0].Outcome != delivery.AttemptRetry || dl[0].Attempts[1].Outcome != delivery.AttemptDead {
		t.Fatalf("outcomes %v, %v; want retry, dead", dl[0].Attempts[0].Outcome, dl[0].Attempts[1].Outcome)
	}
	// Paging.
	page1, next, _ := s.DeadList(Filter{}, "", 1)
	page2, next2, _ := s.DeadList(Filter{}, next, 1)
	if len(page1) != 1 || len(page2) != 1 || next == "" || next2 != "" || page1[0].Ref == page2[0].Ref {
		t.Fatalf("pages %v %q %v %q", page1, next, page2, next2)
	}

	if err := s.Replay("evt_3.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Replay("evt_3.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second replay: %v, want ErrNotFound", err)
	}
	got, _ = s.Claim(nil, "crm", time.Now(), 10, time.Minute)
	if len(got) != 1 || string(got[0].Delivery.ID) != "evt_3.0" || got[0].Attempts != 0 {
		t.Fatalf("after replay claimed %v", got)
	}
	if n, err := s.DeadCount(Filter{Target: "crm"}); n != 1 || err != nil {
		t.Fatalf("DeadCount(crm) = %d, %v; want 1", n, err)
	}
	if n, err := s.DeadCount(Filter{}); n != 1 || err != nil {
		t.Fatalf("DeadCount() = %d, %v; want 1", n, err)
	}
	if n, err := s.DeadCount(Filter{Route: "howxm"}); n != 0 || err != nil {
		t.Fatalf("DeadCount(route howxm) = %d, %v; want 0 (replayed)", n, err)
	}
	if n, err := s.ReplayAll(Filter{Route: "nope"}, 0, nil); n != 0 || err != nil {
		t.Fatalf("replay of no match: %d %v", n, err)
	}
	var progress []int
	n, err := s.ReplayAll(Filter{Target: "crm"}, 0, func(done int) { progress = append(progress, done) })
	if err != nil || n != 1 || !reflect.DeepEqual(progress, []int{1}) {
		t.Fatalf("replay all: n=%d err=%v progress=%v", n, err, progress)
	}
	if st := s.Stats()["crm"]; st.Dead != 0 || st.Depth != 2 {
		t.Fatalf("after replay all: %+v", st)
	}
}

func TestBudget(t *testing.T) {
	one := testDelivery("evt_5.0", "crm", "r")
	size := int64(recordLen(&one))
	tests := []struct {
		name string
		opts Options
	}{
		{"depth", Options{MaxDepth: 2}},
		{"bytes", Options{MaxBytes: 2*size + size/2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), tt.opts)
			defer s.Close()
			for i := 0; i < 2; i++ {
				if err := s.Enqueue([]delivery.Delivery{one}); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Enqueue([]delivery.Delivery{one})
			if !errors.Is(err, ErrFull) {
				t.Fatalf("third enqueue: %v, want ErrFull", err)
			}
			if st := s.Stats()["crm"]; st.Depth != 2 {
				t.Fatalf("depth %d after a refused enqueue, want 2", st.Depth)
			}
			got, _ := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
			s.Ack(got[0].Ref)
			if err := s.Enqueue([]delivery.Delivery{one}); err != nil {
				t.Fatalf("enqueue after an ack made room: %v", err)
			}
		})
	}
}

func TestReopenRedeliversUnacked(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Sync: SyncBatch})
	var ds []delivery.Delivery
	for i := 0; i < 5; i++ {
		ds = append(ds, testDelivery(fmt.Sprintf("evt_6.%d", i), "crm", "r"))
	}
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Claim(nil, "crm", time.Now(), 3, time.Minute)
	s.Ack(got[0].Ref) // acked: gone; got[1], got[2] in flight: back after restart
	s.Retry(got[1].Ref, time.Now(), delivery.Attempt{At: time.Now(), Status: 500})
	s.Close()

	s = openTest(t, dir, Options{})
	defer s.Close()
	got, _ = s.Claim(nil, "crm", time.Now().Add(time.Second), 10, time.Minute)
	// evt_6.1 was retried, so it is due last.
	if want := []string{"evt_6.2", "evt_6.3", "evt_6.4", "evt_6.1"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("after reopen claimed %v, want %v", ids(got), want)
	}
	if got[3].Attempts != 1 || got[0].Attempts != 0 {
		t.Fatalf("attempts after reopen = %d, %d, want 1, 0", got[3].Attempts, got[0].Attempts)
	}
	// New sequence numbers never collide with old ones.
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_7.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats()["crm"]; st.Depth != 5 {
		t.Fatalf("depth %d, want 5", st.Depth)
	}
}

func TestClosed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := Open(Options{Path: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open of a directory in use: %v, want ErrLocked", err)
	}
	s.Close()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_8.0", "crm", "r")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	if _, err := s.Claim(nil, "crm", time.Now(), 1, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("claim after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestUnreadableRecords(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_10.0", "crm", "r"), testDelivery("evt_10.1", "crm", "r"), testDelivery("evt_10.2", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	// Reach under the store: lose the first record, corrupt the second.
	first := s.seq.Load() - 2
	k0, k1 := keyOf(kindRecord, first), keyOf(kindRecord, first+1)
	if err := s.db.Delete(k0[:], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(k1[:], []byte{9, 9, 9}, nil); err != nil {
		t.Fatal(err)
	}
	s.recent = newRecent() // the claims read what is on disk
	now := time.Now()
	got, err := s.Claim(nil, "crm", now, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_10.2"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("claimed %v, want %v", ids(got), want)
	}
	// The lost one is forgotten; the corrupt one is parked for an hour.
	if st := s.Stats()["crm"]; st.Depth != 2 || st.Leased != 1 {
		t.Fatalf("stats %+v, want the corrupt one and the leased one", st)
	}
	if due, ok := s.NextDue("crm"); !ok || due.Sub(now) != time.Hour {
		t.Fatalf("corrupt record due %v, want in 1h", due.Sub(now))
	}
}

func TestReplayAllLimit(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const total = 600 // more than one chunk
	ds := make([]delivery.Delivery, total)
	for i := range ds {
		ds[i] = testDelivery(fmt.Sprintf("evt_11.%d", i), "crm", "r")
	}
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Claim(nil, "crm", time.Now(), total, time.Minute)
	for _, l := range got {
		if err := s.Dead(l.Ref, delivery.Attempt{At: time.Now(), Status: 400}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		limit     int
		replayed  int
		remaining int
	}{
		{"one", 1, 1, total - 1},
		{"a chunk and a bit", 300, 300, total - 301},
		{"the rest", 0, total - 301, 0},
		{"nothing left", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.ReplayAll(Filter{Target: "crm"}, tt.limit, nil)
			left, _ := s.DeadCount(Filter{Target: "crm"})
			if err != nil || n != tt.replayed || left != tt.remaining {
				t.Fatalf("ReplayAll(limit %d) = %d, %v, %d left; want %d, %d left", tt.limit, n, err, left, tt.replayed, tt.remaining)
			}
		})
	}
	if st := s.Stats()["crm"]; st.Depth != total || st.Dead != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestConcurrentUse runs producers and workers together (under -race in
// CI): every delivery is acked exactly once in the end and the counters
// return to zero.
func TestConcurrentUse(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const producers, events = 4, 150
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range events {
				ev := []delivery.Delivery{
					testDelivery(fmt.Sprintf("evt_%d_%d.0", p, i), "crm", "r"),
					testDelivery(fmt.Sprintf("evt_%d_%d.1", p, i), "sms", "r"),
				}
				if err := s.Enqueue(ev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	acked := map[string]int{}
	want := producers * events * 2
	deadline := time.Now().Add(20 * time.Second)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ls []Leased
			for n := 0; ; n++ {
				mu.Lock()
				done := len(acked) == want
				mu.Unlock()
				if done || time.Now().After(deadline) {
					return
				}
				target := []string{"crm", "sms"}[(n+w)%2]
				ls, _ = s.Claim(ls, target, time.Now(), 8, time.Minute)
				for i := range ls {
					switch (n + i) % 4 {
					case 0:
						s.Retry(ls[i].Ref, time.Now(), delivery.Attempt{At: time.Now(), Status: 503})
					case 1:
						s.Release(ls[i].Ref)
					default:
						if err := s.Ack(ls[i].Ref); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked[string(ls[i].Delivery.ID)]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(acked) != want {
		t.Fatalf("acked %d distinct deliveries, want %d", len(acked), want)
	}
	for id, n := range acked {
		if n != 1 {
			t.Fatalf("%s acked %d times", id, n)
		}
	}
	for name, st := range s.Stats() {
		if st.Depth != 0 || st.Bytes != 0 || st.Leased != 0 {
			t.Fatalf("%s: %+v after everything was acked", name, st)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.depth != 0 || s.bytes != 0 || len(s.entries) != 0 {
		t.Fatalf("store counters depth=%d bytes=%d entries=%d, want 0", s.depth, s.bytes, len(s.entries))
	}
}

// Claim looks for ended leases only once the earliest one can have ended:
// leases of different lengths, claimed in any order, each end on time.
func TestLeasesOfDifferentLengths(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	var ds []delivery.Delivery
	for _, id := range []string{"evt_l.0", "evt_s.0", "evt_m.0"} {
		ds = append(ds, testDelivery(id, "crm", "r"))
	}
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	claim := func(at time.Duration, leaseFor time.Duration) []string {
		t.Helper()
		got, err := s.Claim(nil, "crm", t0.Add(at), 1, leaseFor)
		if err != nil {
			t.Fatal(err)
		}
		return ids(got)
	}
	// Leased in order: one hour, one second (ends first though leased
	// later), ten minutes.
	long, short, mid := claim(0, time.Hour), claim(0, time.Second), claim(0, 10*time.Minute)
	if len(long) != 1 || len(short) != 1 || len(mid) != 1 {
		t.Fatalf("claimed %v %v %v, want one each", long, short, mid)
	}
	steps := []struct {
		name string
		at   time.Duration
		want []string
	}{
		{name: "all leased", at: 500 * time.Millisecond, want: nil},
		{name: "the short lease ended", at: 2 * time.Second, want: short},
		{name: "nothing else yet", at: 9 * time.Minute, want: nil},
		{name: "the ten-minute lease ended", at: 10 * time.Minute, want: mid},
		{name: "the re-claimed short one is leased for a day", at: 59 * time.Minute, want: nil},
		{name: "the hour lease ended", at: time.Hour, want: long},
	}
	for _, st := range steps {
		got := claim(st.at, 24*time.Hour)
		if strings.Join(got, ",") != strings.Join(st.want, ",") {
			t.Errorf("%s: claimed %v at +%v, want %v", st.name, got, st.at, st.want)
		}
	}
}

// An event whose deliveries add up to more than half a memtable goes to
// Pebble as a flushable batch of its own: it is stored, claimed whole,
// survives a reopen and is acked like any other, with small events
// before and after it.
func TestEventLargerThanHalfAMemtable(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	body := bytes.Repeat([]byte("0123456789abcdef"), (memTableSize/2)/16/3+1) // three of these are over half
	var big []delivery.Delivery
	for i := 0; i < 3; i++ {
		d := testDelivery(fmt.Sprintf("evt_big.%d", i), "crm", "r")
		d.Body = body
		big = append(big, d)
	}
	for _, ds := range [][]delivery.Delivery{{testDelivery("evt_a.0", "crm", "r")}, big, {testDelivery("evt_b.0", "crm", "r")}} {
		if err := s.Enqueue(ds); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Claim(nil, "crm", time.Now(), 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_a.0", "evt_big.0"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("claimed %v, want %v", ids(got), want)
	}
	if !bytes.Equal(got[1].Delivery.Body, body) {
		t.Fatalf("large body came back as %d bytes, want %d", len(got[1].Delivery.Body), len(body))
	}
	for _, l := range got {
		if err := s.Ack(l.Ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, Options{})
	defer s.Close()
	got, err = s.Claim(nil, "crm", time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_big.1", "evt_big.2", "evt_b.0"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("after reopen claimed %v, want %v", ids(got), want)
	}
	for i := 0; i < 2; i++ {
		if !bytes.Equal(got[i].Delivery.Body, body) {
			t.Fatalf("%s: body of %d bytes after reopen, want %d", got[i].Delivery.ID, len(got[i].Delivery.Body), len(body))
		}
	}
}
