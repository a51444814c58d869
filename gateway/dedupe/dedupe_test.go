package dedupe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source; tests move it, nothing sleeps.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) add(d time.Duration)          { c.t = c.t.Add(d) }
func newClock() *clock                        { return &clock{t: time.Unix(1_700_000_000, 0)} }
func withClock(d *Deduper, c *clock) *Deduper { d.now = c.now; return d }

func mustNew(t testing.TB, spec Spec) *Deduper {
	t.Helper()
	d, err := New(spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// headers looks headers up without allocating.
type headers map[string][]byte

func (h headers) peek(name []byte) []byte { return h[string(name)] }

// part is how Key spells one JSON value: its length, then its bytes.
func part(s string) string { return string(binary.AppendUvarint(nil, uint64(len(s)))) + s }

func TestKeyHeader(t *testing.T) {
	d := mustNew(t, Spec{Header: "webhook-id"})
	tests := []struct {
		name    string
		headers headers
		want    string
		ok      bool
	}{
		{"present", headers{"webhook-id": []byte("msg_p5jXN8AQM9LWM0D4loKWxJek")}, "msg_p5jXN8AQM9LWM0D4loKWxJek", true},
		{"absent", headers{"Idempotency-Key": []byte("k")}, "", false},
		{"empty", headers{"webhook-id": []byte("")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, ok := d.Key(tt.headers.peek, []byte(`{"id":1}`), make([]byte, 0, 64))
			if string(key) != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", key, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestKeyJSON(t *testing.T) {
	howxm, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		paths []string
		body  string
		want  string
		ok    bool
	}{
		{"seed 000 serial number", []string{"entry.serial_number"}, string(howxm), part("1215"), true},
		{"seed 001 crk", []string{"crk"}, `{"crk":"inv-7f3a","email":"a@b.c"}`, part("inv-7f3a"), true},
		{"escaped string is its value", []string{"crk"}, `{"crk":"inv-\u0037f3a"}`, part("inv-7f3a"), true},
		{"number", []string{"n"}, `{"n":12.50}`, part("12.50"), true},
		{"deeply nested", []string{"a.b.c.d"}, `{"a":{"b":{"c":{"d":true}}}}`, part("true"), true},
		{"array element", []string{"items.1.id"}, `{"items":[{"id":1},{"id":2}]}`, part("2"), true},
		{"object value", []string{"o"}, `{"o":{"x":1}}`, part(`{"x":1}`), true},
		{"two paths", []string{"survey_id", "crk"}, `{"crk":"c1","survey_id":42}`, part("42") + part("c1"), true},
		{"two paths do not run together", []string{"a", "b"}, `{"a":"x","b":"yz"}`, part("x") + part("yz"), true},
		{"missing path", []string{"entry.serial"}, string(howxm), "", false},
		{"one of two paths missing", []string{"survey_id", "crk"}, `{"crk":"c1"}`, "", false},
		{"null", []string{"crk"}, `{"crk":null}`, "", false},
		{"empty string", []string{"crk"}, `{"crk":""}`, "", false},
		{"empty body", []string{"crk"}, ``, "", false},
		{"not JSON", []string{"crk"}, `crk=1`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, Spec{JSON: tt.paths})
			key, ok := d.Key(headers{}.peek, []byte(tt.body), nil)
			if string(key) != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", key, ok, tt.want, tt.ok)
			}
		})
	}
	// Two JSON paths whose values would concatenate to the same bytes.
	d := mustNew(t, Spec{JSON: []string{"a", "b"}})
	k1, _ := d.Key(headers{}.peek, []byte(`{"a":"ab","b":"c"}`), nil)
	k2, _ := d.Key(headers{}.peek, []byte(`{"a":"a","b":"bc"}`), nil)
	if string(k1) == string(k2) {
		t.Fatalf("distinct values give one key %q", k1)
	}
}

func TestCheck(t *testing.T) {
	d := mustNew(t, Spec{Header: "webhook-id"})
	if first, dup := d.Check([]byte("k1"), []byte("evt_1")); dup || first != nil {
		t.Fatalf("first sighting: got %q %v, want nil false", first, dup)
	}
	for i := range 3 {
		first, dup := d.Check([]byte("k1"), []byte(fmt.Sprintf("evt_%d", i+2)))
		if !dup || string(first) != "evt_1" {
			t.Fatalf("repeat %d: got %q %v, want evt_1 true", i, first, dup)
		}
	}
	if _, dup := d.Check([]byte("k2"), []byte("evt_9")); dup {
		t.Fatal("another key is a duplicate")
	}
	long := make([]byte, 100) // longer than the inline event id
	for i := range long {
		long[i] = byte('a' + i%26)
	}
	want := string(long)
	d.Check([]byte("k3"), long)
	long[0] = 'Z' // the caller reuses its buffer
	if first, _ := d.Check([]byte("k3"), nil); string(first) != want {
		t.Fatalf("long event id not kept as given: got %q, want %q", first, want)
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d, want 3", d.Len())
	}
}

func TestBeginAcceptForget(t *testing.T) {
	c := newClock()
	d := withClock(mustNew(t, Spec{Header: "Idempotency-Key"}), c)
	key := []byte("order-1")
	step := func(eventID string, wantFirst string, want Seen) {
		t.Helper()
		first, seen := d.Begin(key, []byte(eventID))
		if seen != want || string(first) != wantFirst {
			t.Fatalf("Begin(%s): got %q %v, want %q %v", eventID, first, seen, wantFirst, want)
		}
	}
	step("evt_a", "", First)
	step("evt_b", "evt_a", InFlight) // a copy while the first is handled
	d.Accept(key, []byte("evt_b"))   // not the owner: no effect
	step("evt_c", "evt_a", InFlight)
	d.Forget(key, []byte("evt_c")) // not the owner: no effect
	step("evt_d", "evt_a", InFlight)
	d.Forget(key, []byte("evt_a")) // the first failed before it was accepted
	step("evt_e", "", First)       // the sender's retry is handled afresh
	d.Accept(key, []byte("evt_e"))
	step("evt_f", "evt_e", Duplicate)
	if first, dup := d.Check(key, []byte("evt_g")); !dup || string(first) != "evt_e" {
		t.Fatalf("Check after Accept: got %q %v", first, dup)
	}

	// A first copy whose handler never finished stops blocking retries
	// after inFlightLimit, and its late Forget cannot remove the new one.
	key = []byte("order-2")
	step("evt_1", "", First)
	c.add(inFlightLimit - time.Nanosecond)
	step("evt_2", "evt_1", InFlight)
	c.add(time.Nanosecond)
	step("evt_3", "", First)
	d.Forget(key, []byte("evt_1"))
	step("evt_4", "evt_3", InFlight)
	if got := (Seen(9)).String(); got != "unknown" {
		t.Fatalf("Seen(9) = %q", got)
	}
}

func TestTTL(t *testing.T) {
	c := newClock()
	d := withClock(mustNew(t, Spec{Header: "webhook-id", TTL: time.Hour}), c)
	d.Check([]byte("k"), []byte("evt_1"))
	c.add(time.Hour - time.Nanosecond)
	if first, dup := d.Check([]byte("k"), []byte("evt_2")); !dup || string(first) != "evt_1" {
		t.Fatalf("inside the TTL: got %q %v", first, dup)
	}
	c.add(time.Nanosecond)
	if _, dup := d.Check([]byte("k"), []byte("evt_3")); dup {
		t.Fatal("after the TTL the key is still a duplicate")
	}
	if first, dup := d.Check([]byte("k"), []byte("evt_4")); !dup || string(first) != "evt_3" {
		t.Fatalf("after re-recording: got %q %v, want evt_3", first, dup)
	}
	if got := d.Spec().TTL; got != time.Hour {
		t.Fatalf("Spec().TTL = %v", got)
	}
}

// TestExpiredEntriesLeave: memory follows the traffic, not its peak.
func TestExpiredEntriesLeave(t *testing.T) {
	c := newClock()
	d := withClock(mustNew(t, Spec{Header: "h", TTL: time.Minute}), c)
	for i := range 10 {
		d.Check([]byte{byte(i)}, []byte("e"))
	}
	c.add(time.Minute)
	for i := range 4 {
		d.Check([]byte{100, byte(i)}, []byte("e"))
	}
	// Each call dropped two expired keys and added one: 10 - 8 + 4.
	if got := d.Len(); got != 6 {
		t.Fatalf("Len = %d, want 6", got)
	}
}

func TestBounded(t *testing.T) {
	d := mustNew(t, Spec{Header: "h", MaxEntries: 3})
	for i := range 5 {
		d.Check([]byte{byte(i)}, []byte{'e', byte('0' + i)})
	}
	if got := d.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	// The two oldest were evicted. Look the newest up first, so that
	// re-recording the evicted ones does not push the others out.
	for _, c := range []struct {
		key byte
		dup bool
	}{{4, true}, {3, true}, {2, true}, {1, false}, {0, false}} {
		if _, dup := d.Check([]byte{c.key}, []byte("x")); dup != c.dup {
			t.Fatalf("key %d: dup = %v, want %v", c.key, dup, c.dup)
		}
	}
	if got := mustNew(t, Spec{Header: "h"}).Spec().MaxEntries; got != DefaultMaxEntries {
		t.Fatalf("default max_entries = %d", got)
	}
}

// TestConcurrent: copies of one event arriving at the same moment; exactly
// one is first, every other one names it. Run with -race.
func TestConcurrent(t *testing.T) {
	for _, begin := range []bool{false, true} {
		t.Run(fmt.Sprintf("begin=%v", begin), func(t *testing.T) {
			d := mustNew(t, Spec{Header: "h", MaxEntries: 1000})
			const workers, keys = 8, 50
			var firsts [keys]int
			var owner [keys]string
			var mu sync.Mutex
			var bad []string
			var start, wg sync.WaitGroup
			start.Add(1)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start.Wait()
					for k := range keys {
						key := []byte(fmt.Sprintf("key-%d", k))
						id := fmt.Sprintf("evt_%d_%d", k, w)
						var first []byte
						var isFirst bool
						if begin {
							var seen Seen
							first, seen = d.Begin(key, []byte(id))
							isFirst = seen == First
							if isFirst {
								d.Accept(key, []byte(id))
							}
						} else {
							var dup bool
							first, dup = d.Check(key, []byte(id))
							isFirst = !dup
						}
						mu.Lock()
						if isFirst {
							firsts[k]++
							owner[k] = id
						} else if len(first) == 0 {
							bad = append(bad, id)
						}
						mu.Unlock()
					}
				}()
			}
			start.Done()
			wg.Wait()
			if len(bad) > 0 {
				t.Fatalf("duplicates without a first event id: %v", bad)
			}
			for k := range keys {
				if firsts[k] != 1 {
					t.Fatalf("key %d: %d copies were first, want exactly 1", k, firsts[k])
				}
				first, dup := d.Check([]byte(fmt.Sprintf("key-%d", k)), []byte("late"))
				if !dup || string(first) != owner[k] {
					t.Fatalf("key %d: late copy got %q %v, want %q", k, first, dup, owner[k])
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"neither", Spec{}, "header", `set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`},
		{"both", Spec{Header: "h", JSON: []string{"a"}}, "header", `set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`},
		{"empty path", Spec{JSON: []string{"a", ""}}, "json[1]", `is empty: write a dotted path such as "entry.serial_number"`},
		{"negative ttl", Spec{Header: "h", TTL: -time.Second}, "ttl", `must not be negative: write a duration such as "24h"`},
		{"negative size", Spec{Header: "h", MaxEntries: -1}, "max_entries", `must not be negative: 0 means the default of 100000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.spec)
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || se.Msg != tt.msg {
				t.Fatalf("got %v, want field %q msg %q", err, tt.field, tt.msg)
			}
			if want := "dedupe: " + tt.field + ": " + tt.msg; err.Error() != want {
				t.Fatalf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestSpecEqual(t *testing.T) {
	a := Spec{JSON: []string{"a", "b"}, TTL: time.Hour}
	if !a.Equal(Spec{JSON: []string{"a", "b"}, TTL: time.Hour}) {
		t.Fatal("equal specs differ")
	}
	if a.Equal(Spec{JSON: []string{"a"}, TTL: time.Hour}) || a.Equal(Spec{JSON: []string{"a", "b"}}) {
		t.Fatal("different specs are equal")
	}
}
