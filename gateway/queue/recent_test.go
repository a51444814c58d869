package queue

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// A claim soon after the enqueue decodes the record the ring kept, and
// gets what a read from Pebble gets: the same delivery, field by field.
func TestClaimDecodesRecentRecords(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	var ds []delivery.Delivery
	for i := range 20 {
		d := testDelivery(fmt.Sprintf("evt_%d.0", i), "crm", "r")
		d.Headers = append(d.Headers, delivery.KV{Key: []byte("X-N"), Value: []byte(fmt.Sprint(i))})
		d.Body = bytes.Repeat([]byte{byte('a' + i)}, 100*i)
		ds = append(ds, d)
	}
	if err := s.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	fromRing, err := s.Claim(nil, "crm", time.Now(), len(ds), time.Minute)
	if err != nil || len(fromRing) != len(ds) {
		t.Fatalf("claimed %d (%v), want %d", len(fromRing), err, len(ds))
	}
	if s.recent.hits != uint64(len(ds)) {
		t.Fatalf("%d claims decoded from the ring, want all %d", s.recent.hits, len(ds))
	}
	for i, l := range fromRing {
		var disk delivery.Delivery
		k := keyOf(kindRecord, l.seq)
		v, closer, err := s.db.Get(k[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeStored(v, &disk, s); err != nil {
			t.Fatal(err)
		}
		closer.Close()
		if !reflect.DeepEqual(l.Delivery, disk) {
			t.Fatalf("claim %d from the ring:\n%+v\nfrom Pebble:\n%+v", i, l.Delivery, disk)
		}
		want := ds[i]
		want.Ordered, want.OrderKey = false, nil
		if !bytes.Equal(l.Delivery.ID, want.ID) || !bytes.Equal(l.Delivery.Body, want.Body) || !reflect.DeepEqual(l.Delivery.Headers, want.Headers) {
			t.Fatalf("claim %d: %+v, want %+v", i, l.Delivery, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the ring is empty: the same deliveries come from
	// Pebble, identical.
	s = openTest(t, dir, Options{})
	defer s.Close()
	fromDisk, err := s.Claim(nil, "crm", time.Now(), len(ds), time.Minute)
	if err != nil || len(fromDisk) != len(ds) {
		t.Fatalf("claimed %d (%v) after the restart, want %d", len(fromDisk), err, len(ds))
	}
	if s.recent.hits != 0 {
		t.Fatalf("%d claims decoded from an empty ring", s.recent.hits)
	}
	for i := range fromDisk {
		if !reflect.DeepEqual(fromDisk[i].Delivery, fromRing[i].Delivery) {
			t.Fatalf("claim %d after the restart:\n%+v\nbefore:\n%+v", i, fromDisk[i].Delivery, fromRing[i].Delivery)
		}
	}
}

// More records than the ring holds, some too large to keep: every claim
// still gets its own delivery, the ring serving only what it still holds.
func TestRecentRingOverflows(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch})
	defer s.Close()
	const n = 3000
	body := func(i int) []byte {
		size := 2000 + i%7*100
		if i%500 == 7 {
			size = recentMax + 1 // not kept
		}
		b := bytes.Repeat([]byte{byte(i)}, size)
		return append(b, fmt.Sprint(i)...)
	}
	for i := 0; i < n; i += 10 {
		var ds []delivery.Delivery
		for j := i; j < i+10; j++ {
			d := testDelivery(fmt.Sprintf("evt_%d.0", j), "crm", "r")
			d.Body = body(j)
			ds = append(ds, d)
		}
		if err := s.Enqueue(ds); err != nil {
			t.Fatal(err)
		}
	}
	// Written, as a backlog is (a claim of a staged record reads it
	// from its generation: stage.go), and so kept in the ring.
	if err := s.flushStaged(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		ls, err := s.Claim(nil, "crm", time.Now(), 64, time.Minute)
		if err != nil || len(ls) == 0 {
			t.Fatalf("claim after %d: %d, %v", got, len(ls), err)
		}
		for _, l := range ls {
			var j int
			if _, err := fmt.Sscanf(string(l.Delivery.ID), "evt_%d.0", &j); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(l.Delivery.Body, body(j)) {
				t.Fatalf("delivery %d: body of %d bytes, want its own %d", j, len(l.Delivery.Body), len(body(j)))
			}
			if err := s.Ack(l.Ref); err != nil {
				t.Fatal(err)
			}
		}
		got += len(ls)
	}
	// 3000 records of about 2 KB in a 2 MiB ring: the latest thousand or
	// so were still there, the rest read from Pebble.
	if h := s.recent.hits; h < 500 || h >= n-n/500 {
		t.Fatalf("%d of %d claims from the ring, want the ring's share", h, n)
	}
}

// The ring's arithmetic on a small ring: a record is served while no
// write has gone a whole ring past it, never across the wrap, and a
// slot reused by a later sequence answers only for that one.
func TestRecentRing(t *testing.T) {
	r := &recent{ring: make([]byte, 200), slots: make([]slot, 16)} // keeps records of up to 25 bytes
	rec := func(seq uint64) []byte {
		b := bytes.Repeat([]byte{byte(seq)}, 24)
		b[0] = recordV1
		return b
	}
	has := func(seq uint64) bool {
		got, ok := r.lookup(seq)
		if ok && !bytes.Equal(got, rec(seq)) {
			t.Fatalf("record %d reads %v", seq, got)
		}
		return ok
	}
	for seq := range uint64(8) { // 192 bytes
		r.put(seq, rec(seq))
	}
	for seq := range uint64(8) {
		if !has(seq) {
			t.Fatalf("record %d gone before the ring was full", seq)
		}
	}
	r.put(8, rec(8)) // does not fit at 192: goes to the start, over record 0
	if sl := r.slots[8]; sl.at != 200 {
		t.Fatalf("record 8 at %d, want at the ring's start (200)", sl.at)
	}
	if has(0) {
		t.Fatal("record 0 served after record 8 overwrote it")
	}
	for seq := uint64(1); seq <= 8; seq++ {
		if !has(seq) {
			t.Fatalf("record %d gone, though nothing overwrote it", seq)
		}
	}
	r.put(17, rec(17)) // slot 1, taken from sequence 1; overwrites record 1
	if has(1) {
		t.Fatal("sequence 1 answered by the slot sequence 17 took")
	}
	if !has(17) {
		t.Fatal("record 17 missing")
	}
	r.put(18, make([]byte, 26)) // slot 2: too large to keep
	if has(18) || r.slots[2].seq1 != 0 {
		t.Fatal("a record larger than an eighth of the ring was kept")
	}
}
