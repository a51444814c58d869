package journal

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

func evID(i int) []byte { return fmt.Appendf(nil, "evt_%026d", i) }

func deliveriesOf(id []byte, route string, targets ...string) []delivery.Delivery {
	ds := make([]delivery.Delivery, len(targets))
	for i, t := range targets {
		ds[i] = delivery.Delivery{ID: fmt.Appendf(nil, "%s.%d", id, i), EventID: id, Route: route, Target: t}
	}
	return ds
}

func TestJournalRecordsAnEvent(t *testing.T) {
	j := New(4)
	id := evID(1)
	recv := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	ev := &delivery.Event{ID: id, Route: "howxm", ReceivedAt: recv.UnixNano()}
	out := &delivery.Outcome{Emitted: true}
	ds := deliveriesOf(id, "howxm", "crm", "survey")
	ds[1].Method, ds[1].Path = []byte("GET"), []byte("/api.php")
	ds[1].Query = []delivery.KV{{Key: []byte("crk"), Value: []byte("a1")}, {Key: []byte("email"), Value: []byte("x+y@z&w=1")}}
	ds[1].NotBefore = recv.Add(time.Minute).UnixNano()
	out.Deliveries = ds
	j.Chain(ev, out, nil)
	j.queued(id, "howxm", recv.UnixNano(), 202, "", ds)
	at := recv.Add(time.Second)
	j.Attempt(&ds[0], delivery.Attempt{At: at, Status: 503, Error: "status 503: will retry", Duration: 20 * time.Millisecond, Outcome: delivery.AttemptRetry, Body: []byte("busy")})
	j.Attempt(&ds[0], delivery.Attempt{At: at.Add(time.Second), Status: 200, Duration: 5 * time.Millisecond, Outcome: delivery.AttemptSuccess})

	got, ok := j.Get(string(id))
	if !ok {
		t.Fatal("event not found")
	}
	if got.Route != "howxm" || !got.ReceivedAt.Equal(recv) || got.Status != 202 || got.Partial {
		t.Errorf("event = %+v", got)
	}
	if got.Chain == nil || got.Chain.Emitted != 2 || got.Chain.Dropped {
		t.Errorf("chain = %+v", got.Chain)
	}
	if len(got.Deliveries) != 2 || got.DeliveriesTotal != 2 {
		t.Fatalf("deliveries = %+v", got.Deliveries)
	}
	d0, d1 := got.Deliveries[0], got.Deliveries[1]
	if d0.ID != string(id)+".0" || d0.Target != "crm" || d0.AttemptsTotal != 2 || len(d0.Attempts) != 2 {
		t.Errorf("delivery 0 = %+v", d0)
	}
	if a := d0.Attempts[0]; a.Status != 503 || a.Outcome != delivery.AttemptRetry || a.Error != "status 503: will retry" || a.Duration != 20*time.Millisecond || !a.At.Equal(at) || a.Body != nil {
		t.Errorf("attempt 0 = %+v", a)
	}
	if a := d0.Attempts[1]; a.Status != 200 || a.Outcome != delivery.AttemptSuccess || a.Error != "" {
		t.Errorf("attempt 1 = %+v", a)
	}
	if d1.Method != "GET" || d1.Path != "/api.php" || fmt.Sprintf("%s", d1.Query) != "[{crk a1} {email x+y@z&w=1}]" || !d1.NotBefore.Equal(recv.Add(time.Minute)) || len(d1.Attempts) != 0 {
		t.Errorf("delivery 1 = %+v", d1)
	}
}

func TestJournalChainOutcomes(t *testing.T) {
	tests := []struct {
		name string
		out  delivery.Outcome
		err  error
		want Chain
	}{
		{name: "dropped", out: delivery.Outcome{Dropped: true, DropReason: []byte("score below 9")}, want: Chain{Dropped: true, DropReason: "score below 9"}},
		{name: "passed through", want: Chain{}},
		{name: "plugin error", err: errors.New(`plugin "nps": timeout`), want: Chain{PluginError: `plugin "nps": timeout`}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := New(8)
			id := evID(i)
			j.Chain(&delivery.Event{ID: id, Route: "r"}, &tt.out, tt.err)
			got, ok := j.Get(string(id))
			if !ok || got.Chain == nil || *got.Chain != tt.want {
				t.Errorf("chain = %+v (found %v), want %+v", got.Chain, ok, tt.want)
			}
		})
	}
}

func TestJournalForgetsTheOldest(t *testing.T) {
	j := New(3)
	for i := range 5 {
		j.received(evID(i), "r", int64(i+1))
	}
	for i := range 5 {
		_, ok := j.Get(string(evID(i)))
		if want := i >= 2; ok != want {
			t.Errorf("event %d found = %v, want %v", i, ok, want)
		}
	}
	if j.Len() != 3 {
		t.Errorf("Len = %d, want 3", j.Len())
	}
	// A reused slot shows nothing of the event it held before.
	j2 := New(1)
	j2.Chain(&delivery.Event{ID: evID(1), Route: "a"}, &delivery.Outcome{Dropped: true, DropReason: []byte("x")}, nil)
	j2.received(evID(2), "b", 7)
	got, _ := j2.Get(string(evID(2)))
	if got.Route != "b" || got.Chain != nil || len(got.Deliveries) != 0 {
		t.Errorf("reused slot = %+v", got)
	}
}

func TestJournalBounds(t *testing.T) {
	j := New(2)
	id := evID(1)
	targets := make([]string, MaxDeliveries+3)
	for i := range targets {
		targets[i] = fmt.Sprint("t", i)
	}
	ds := deliveriesOf(id, "r", targets...)
	j.queued(id, "r", 0, 0, "", ds)
	for n := range MaxAttempts + 5 {
		j.Attempt(&ds[0], delivery.Attempt{At: time.Unix(int64(n), 0), Status: 500 + n, Error: fmt.Sprint("try ", n), Outcome: delivery.AttemptRetry})
	}
	got, _ := j.Get(string(id))
	if len(got.Deliveries) != MaxDeliveries || got.DeliveriesTotal != MaxDeliveries+3 {
		t.Errorf("deliveries kept %d of %d", len(got.Deliveries), got.DeliveriesTotal)
	}
	as := got.Deliveries[0].Attempts
	if len(as) != MaxAttempts || got.Deliveries[0].AttemptsTotal != MaxAttempts+5 {
		t.Fatalf("attempts kept %d of %d", len(as), got.Deliveries[0].AttemptsTotal)
	}
	// The first, then the latest MaxAttempts-1.
	if as[0].Error != "try 0" || as[1].Error != "try 6" || as[len(as)-1].Error != fmt.Sprint("try ", MaxAttempts+4) {
		t.Errorf("kept attempts %q, %q .. %q", as[0].Error, as[1].Error, as[len(as)-1].Error)
	}
	for i := 1; i < len(as); i++ {
		if want := fmt.Sprint("try ", i+5); as[i].Error != want || as[i].Status != 500+i+5 {
			t.Errorf("attempt %d = %q %d, want %q", i, as[i].Error, as[i].Status, want)
		}
	}
}

func TestJournalPartialFromAttempt(t *testing.T) {
	j := New(4)
	d := delivery.Delivery{ID: []byte("evt_old.1"), Route: "r", Target: "crm"} // no EventID: found from the id
	j.Attempt(&d, delivery.Attempt{At: time.Unix(1, 0), Status: 200, Outcome: delivery.AttemptSuccess})
	got, ok := j.Get("evt_old")
	if !ok || !got.Partial || got.Route != "r" || len(got.Deliveries) != 1 || got.Deliveries[0].AttemptsTotal != 1 {
		t.Errorf("partial = %+v (found %v)", got, ok)
	}
}

func TestNilJournal(t *testing.T) {
	var j *Journal
	j.Chain(&delivery.Event{ID: evID(1)}, nil, nil)
	j.queued(evID(1), "r", 1, 200, "", deliveriesOf(evID(1), "r", "a"))
	j.Attempt(&delivery.Delivery{ID: []byte("x.0")}, delivery.Attempt{})
	if _, ok := j.Get(string(evID(1))); ok || j.Len() != 0 || j.Size() != 0 {
		t.Error("a nil journal found something")
	}
}

// TestJournalIndexModel checks the id index against a plain model over
// random traffic on a small ring: every event the ring holds is found,
// every forgotten one is not, whatever the collisions and deletions.
func TestJournalIndexModel(t *testing.T) {
	const size, ids, ops = 8, 40, 20000
	j := New(size)
	var held []int // the model: ids in the ring, oldest first
	rnd := uint64(1)
	for op := range ops {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		id := int(rnd>>33) % ids
		j.received(evID(id), "r", int64(op+1))
		known := false
		for _, h := range held {
			known = known || h == id
		}
		if !known {
			if len(held) == size {
				held = held[1:]
			}
			held = append(held, id)
		}
		if op%97 != 0 {
			continue
		}
		for id := range ids {
			want := false
			for _, h := range held {
				want = want || h == id
			}
			if _, ok := j.Get(string(evID(id))); ok != want {
				t.Fatalf("op %d: event %d found = %v, want %v", op, id, ok, want)
			}
		}
		if j.Len() != len(held) {
			t.Fatalf("op %d: Len = %d, want %d", op, j.Len(), len(held))
		}
	}
}

func TestJournalForwarded(t *testing.T) {
	j := New(4)
	id := evID(7)
	ds := deliveriesOf(id, "sync", "crm", "survey")
	j.forwarded(id, "sync", 3, 201, "", ds, []delivery.Attempt{
		{At: time.Unix(5, 0), Status: 201, Duration: time.Millisecond, Outcome: delivery.AttemptSuccess},
		{At: time.Unix(5, 0), Error: "dial tcp 127.0.0.1:9: connection refused", Outcome: delivery.AttemptError},
	})
	got, ok := j.Get(string(id))
	if !ok || got.Route != "sync" || got.Status != 201 || len(got.Deliveries) != 2 || got.Partial {
		t.Fatalf("event = %+v (found %v)", got, ok)
	}
	a0, a1 := got.Deliveries[0].Attempts, got.Deliveries[1].Attempts
	if len(a0) != 1 || a0[0].Status != 201 || a0[0].Outcome != delivery.AttemptSuccess || len(a1) != 1 || a1[0].Outcome != delivery.AttemptError || a1[0].Status != 0 ||
		a1[0].Error != "dial tcp 127.0.0.1:9: connection refused" {
		t.Errorf("attempts = %+v, %+v", a0, a1)
	}
}

// Two ids whose hashes are equal: the index tells them apart by the ring
// entry's id, and deleting one leaves the other found.
func TestJournalIndexSameHash(t *testing.T) {
	x := newIndex(4)
	ring := make([]entry, 4)
	k0, _ := keyOf(evID(0))
	k1, _ := keyOf(evID(1))
	ring[0].id, ring[1].id = k0, k1
	const h = 5
	x.put(h, 0)
	x.put(h, 1)
	if r, ok := x.get(&k1, h, ring); !ok || r != 1 {
		t.Fatalf("get(k1) = %d, %v; want slot 1", r, ok)
	}
	x.del(h, 0)
	if _, ok := x.get(&k0, h, ring); ok {
		t.Fatal("k0 found after its slot was deleted")
	}
	if r, ok := x.get(&k1, h, ring); !ok || r != 1 || x.n != 1 {
		t.Fatalf("get(k1) after deleting k0 = %d, %v (n %d); want slot 1", r, ok, x.n)
	}
}

// A delivery whose text outgrows its slot's room reads back whole, and
// the slot, reused by a later event with a short text, holds only that.
func TestJournalLongDeliveryText(t *testing.T) {
	j := New(2)
	long := evID(1)
	ds := deliveriesOf(long, "r", "crm")
	ds[0].Path = []byte("/" + strings.Repeat("p", 200))
	ds[0].Query = []delivery.KV{{Key: []byte("q"), Value: []byte(strings.Repeat("v", 100))}}
	j.queued(long, "r", 1, 202, "", ds)
	got, ok := j.Get(string(long))
	if !ok || len(got.Deliveries) != 1 {
		t.Fatalf("event = %+v (found %v)", got, ok)
	}
	if d := got.Deliveries[0]; d.Path != string(ds[0].Path) || len(d.Query) != 1 || string(d.Query[0].Value) != strings.Repeat("v", 100) || d.ID != string(long)+".0" {
		t.Fatalf("delivery = %+v", d)
	}
	// Two more events: the first slot comes round again.
	for i := 2; i <= 3; i++ {
		id := evID(i)
		j.queued(id, "r", 1, 202, "", deliveriesOf(id, "r", "sms"))
	}
	got, ok = j.Get(string(evID(3)))
	if !ok || len(got.Deliveries) != 1 {
		t.Fatalf("event = %+v (found %v)", got, ok)
	}
	if d := got.Deliveries[0]; d.Path != "" || d.Query != nil || d.Target != "sms" || d.ID != string(evID(3))+".0" {
		t.Fatalf("delivery in a reused slot = %+v", d)
	}
}
