package queue

import (
	"encoding/binary"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hookgate/hookgate/delivery"
)

// claimAll claims every ready delivery of target, keyed by delivery id.
func claimAll(t *testing.T, s *Store, target string) map[string]Leased {
	t.Helper()
	got, err := s.Claim(nil, target, time.Now().Add(time.Hour), 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Leased{}
	for _, l := range got {
		m[string(l.Delivery.ID)] = l
	}
	return m
}

func keysOf(m map[string]Leased) []string { return slices.Sorted(maps.Keys(m)) }

// TestOneKeyPerDelivery: a delivery never retried is one key, its record
// with its pending state; a retry or a replay adds the p key, which wins
// at Open; a dead letter's record is not pending after a restart; and
// once everything is acked, nothing is left.
func TestOneKeyPerDelivery(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ds := []delivery.Delivery{
		testDelivery("evt_1.0", "crm", "r"), // left pending
		testDelivery("evt_2.0", "crm", "r"), // retried once
		testDelivery("evt_3.0", "crm", "r"), // dead-lettered
		testDelivery("evt_4.0", "crm", "r"), // dead-lettered, then replayed
		testDelivery("evt_5.0", "crm", "r"), // retried twice
		testDelivery("evt_6.0", "crm", "r"), // acked
	}
	for i := range ds {
		ds[i].Body = []byte(`{"n":` + string(rune('1'+i)) + `}`)
	}
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	if n, p := countKeys(t, s.db, kindRecord), countKeys(t, s.db, kindPending); n != 6 || p != 0 {
		t.Fatalf("after Enqueue: %d records and %d p keys, want 6 and 0", n, p)
	}
	now := time.Now()
	c := claimAll(t, s, "crm")
	if len(c) != 6 {
		t.Fatalf("claimed %v, want all 6", keysOf(c))
	}
	fail := delivery.Attempt{At: now, Status: 503}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Retry(c["evt_2.0"].Ref, now, fail))
	must(s.Dead(c["evt_3.0"].Ref, fail))
	must(s.Dead(c["evt_4.0"].Ref, fail))
	must(s.Replay("evt_4.0"))
	must(s.Retry(c["evt_5.0"].Ref, now, fail))
	must(s.Ack(c["evt_6.0"].Ref))
	must(s.Release(c["evt_1.0"].Ref))
	again := claimAll(t, s, "crm")
	must(s.Retry(again["evt_5.0"].Ref, now, fail))
	for _, id := range []string{"evt_1.0", "evt_2.0", "evt_4.0"} {
		must(s.Release(again[id].Ref))
	}
	if p := countKeys(t, s.db, kindPending); p != 3 {
		t.Fatalf("%d p keys, want 3 (evt_2.0 and evt_5.0 retried, evt_4.0 replayed)", p)
	}
	must(s.Close())

	s = openTest(t, dir, Options{})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Depth != 4 || st.Dead != 1 {
		t.Fatalf("after a restart: %+v, want 4 pending and 1 dead", st)
	}
	c = claimAll(t, s, "crm")
	if want := []string{"evt_1.0", "evt_2.0", "evt_4.0", "evt_5.0"}; !reflect.DeepEqual(keysOf(c), want) {
		t.Fatalf("claimed %v after a restart, want %v", keysOf(c), want)
	}
	for id, want := range map[string]int{"evt_1.0": 0, "evt_2.0": 1, "evt_4.0": 0, "evt_5.0": 2} {
		l := c[id]
		if l.Attempts != want {
			t.Errorf("%s: %d attempts after a restart, want %d", id, l.Attempts, want)
		}
		if wantBody := ds[int(id[4]-'1')].Body; string(l.Delivery.Body) != string(wantBody) {
			t.Errorf("%s: body %q, want %q", id, l.Delivery.Body, wantBody)
		}
	}
	for _, l := range c {
		must(s.Ack(l.Ref))
	}
	must(s.flushAcks())
	if n, p := countKeys(t, s.db, kindRecord), countKeys(t, s.db, kindPending); n != 1 || p != 0 {
		t.Fatalf("after the acks: %d records and %d p keys, want the dead letter's record alone", n, p)
	}
}

// TestOpensStoreOfRecordsAlone: a store written before one key per
// delivery (a record on its own and a p key for each pending delivery,
// a record and an x key for a dead letter) opens with the same
// deliveries pending, which are claimed, decoded and acked as before.
func TestOpensStoreOfRecordsAlone(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	old := []delivery.Delivery{testDelivery("evt_old.0", "crm", "r"), testDelivery("evt_old.1", "crm", "r")}
	old[0].Body = []byte(`{"old":0}`)
	old[1].Body = []byte(`{"old":1}`)
	first := uint64(1000)
	now := time.Now().UnixNano()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	b := s.db.NewBatch()
	for i := range old {
		seq := first + uint64(i)
		rk, pk := keyOf(kindRecord, seq), keyOf(kindPending, seq)
		must(b.Set(rk[:], AppendRecord(nil, &old[i]), nil))
		if i == 0 {
			must(b.Set(pk[:], appendPending(nil, "crm", now, now, int64(recordLen(&old[i])), 0, &ordering{}), nil))
		} else {
			xk := keyOf(kindDead, seq)
			di := deadInfo{target: []byte("crm"), route: []byte("r"), enqueued: now, deadAt: now, size: 1, attempts: 1}
			must(b.Set(xk[:], appendDead(nil, &di), nil))
			must(b.Set(idKey(old[i].ID), binary.BigEndian.AppendUint64(nil, seq), nil))
		}
	}
	must(b.Commit(pebble.Sync))
	must(s.Close())

	s = openTest(t, dir, Options{})
	defer s.Close()
	if st := s.Stats()["crm"]; st.Depth != 1 || st.Dead != 1 {
		t.Fatalf("%+v, want 1 pending and 1 dead", st)
	}
	c := claimAll(t, s, "crm")
	l, ok := c["evt_old.0"]
	if !ok || len(c) != 1 || string(l.Delivery.Body) != `{"old":0}` {
		t.Fatalf("claimed %v, want evt_old.0 with its body", keysOf(c))
	}
	if err := s.Ack(l.Ref); err != nil {
		t.Fatal(err)
	}
	if err := s.flushAcks(); err != nil {
		t.Fatal(err)
	}
	if n, p := countKeys(t, s.db, kindRecord), countKeys(t, s.db, kindPending); n != 1 || p != 0 {
		t.Fatalf("after the ack: %d records and %d p keys, want the dead letter's record alone", n, p)
	}
	// The old dead letter replays, and goes out like any other.
	if err := s.Replay("evt_old.1"); err != nil {
		t.Fatal(err)
	}
	c = claimAll(t, s, "crm")
	if l, ok := c["evt_old.1"]; !ok || string(l.Delivery.Body) != `{"old":1}` {
		t.Fatalf("claimed %v after the replay, want evt_old.1 with its body", keysOf(c))
	}
}

// TestSplitStored: the stored value's pending state and record come back
// as written, a record on its own is returned as it is, and a truncated
// head is corrupt rather than misread.
func TestSplitStored(t *testing.T) {
	d := testDelivery("evt_9.0", "crm", "r")
	rl := recordLen(&d)
	o := ordering{ordered: true, order: 7, id: orderIDOf([]byte("k"))}
	pl := pendingLen("crm", 5, 6, int64(rl), 0, &o)
	v := make([]byte, storedLen(pl, rl))
	p := putStoredHead(v, pl)
	appendPending(v[p:p], "crm", 5, 6, int64(rl), 0, &o)
	encodeRecord(v[p+pl:], &d)
	rec, pend, err := splitStored(v)
	if err != nil {
		t.Fatal(err)
	}
	var got delivery.Delivery
	if err := DecodeRecord(rec, &got); err != nil || string(got.ID) != "evt_9.0" {
		t.Fatalf("record: %v, %q", err, got.ID)
	}
	pd, err := decodePending(pend)
	if err != nil || pd.due != 5 || pd.enqueued != 6 || pd.size != int64(rl) || pd.ord != o {
		t.Fatalf("pending: %v, %+v", err, pd)
	}
	alone := AppendRecord(nil, &d)
	if rec, pend, err := splitStored(alone); err != nil || pend != nil || string(rec) != string(alone) {
		t.Fatalf("a record on its own: %v, pending %v", err, pend)
	}
	for _, bad := range [][]byte{{storedWithPending}, {storedWithPending, 0x80}, {storedWithPending, 9, 1, 2}} {
		if _, _, err := splitStored(bad); err == nil {
			t.Errorf("splitStored(%x) took a truncated head", bad)
		}
	}
}
