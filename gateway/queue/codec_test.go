package queue

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hookgate/hookgate/delivery"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    delivery.Delivery
	}{
		{"empty", delivery.Delivery{}},
		{"full", testDelivery("evt_1.0", "crm", "howxm")},
		{"negative not-before", delivery.Delivery{ID: []byte("x"), NotBefore: -5}},
		{"big body", delivery.Delivery{Target: "t", Body: make([]byte, 70000)}},
	}
	var reused delivery.Delivery
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord(nil, &tt.d)
			if len(b) != recordLen(&tt.d) {
				t.Fatalf("encoded %d bytes, recordLen says %d", len(b), recordLen(&tt.d))
			}
			if err := DecodeRecord(b, &reused); err != nil {
				t.Fatal(err)
			}
			var want delivery.Delivery
			tt.d.CopyTo(&want)
			if string(reused.ID) != string(want.ID) || reused.Route != want.Route || reused.Target != want.Target ||
				string(reused.Body) != string(want.Body) || reused.NotBefore != want.NotBefore ||
				len(reused.Headers) != len(want.Headers) || len(reused.Query) != len(want.Query) {
				t.Fatalf("decoded %+v, want %+v", reused, want)
			}
			// Trailing garbage and truncation are both refused.
			if err := DecodeRecord(append(b, 0), &reused); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("padded record: %v", err)
			}
			if err := DecodeRecord(b[:len(b)-1], &reused); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated record: %v", err)
			}
		})
	}
}

func TestDecodeRecordReusesBuffers(t *testing.T) {
	d := testDelivery("evt_9.0", "crm", "howxm")
	b := AppendRecord(nil, &d)
	var out delivery.Delivery
	if err := DecodeRecord(b, &out); err != nil {
		t.Fatal(err)
	}
	s := &Store{names: map[string]string{}}
	allocs := testing.AllocsPerRun(100, func() {
		if err := decodeRecord(b, &out, s); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decode into a used Delivery allocates %.0f times, want 0", allocs)
	}
	if !reflect.DeepEqual(out, d) {
		t.Fatalf("decoded %+v, want %+v", out, d)
	}
}

func TestSideRecords(t *testing.T) {
	for _, o := range []ordering{{}, {ordered: true, order: 1 << 62, id: orderIDOf([]byte("cust-1"))}} {
		p, err := decodePending(appendPending(nil, "crm", 5, -7, 99, 3, &o))
		if err != nil || string(p.target) != "crm" || p.due != 5 || p.enqueued != -7 || p.size != 99 || p.attempts != 3 || p.ord != o {
			t.Fatalf("pending %+v %v", p, err)
		}
		if len(appendPending(nil, "crm", 5, -7, 99, 3, &o)) != pendingLen("crm", 5, -7, 99, 3, &o) {
			t.Fatal("pendingLen disagrees with appendPending")
		}
		di := deadInfo{target: []byte("crm"), route: []byte("howxm"), enqueued: 1, deadAt: 2, size: 3, attempts: 4, ord: o}
		got, err := decodeDead(appendDead(nil, &di))
		if err != nil || !reflect.DeepEqual(got, di) {
			t.Fatalf("dead %+v %v", got, err)
		}
	}
	// An unordered delivery's state is what it always was (v1), so
	// stores written before sequences existed open unchanged.
	if b := appendPending(nil, "crm", 5, -7, 99, 3, &ordering{}); b[0] != recordV1 {
		t.Fatalf("unordered pending state is version %d", b[0])
	}
	// A truncated sequence id is corrupt, not misread.
	o := ordering{ordered: true, order: 9, id: orderIDOf(nil)}
	b := appendPending(nil, "crm", 5, -7, 99, 3, &o)
	if _, err := decodePending(b[:len(b)-1]); err == nil {
		t.Fatal("truncated v2 pending state decoded")
	}
}

// FuzzDecodeRecord: no input crashes the decoder or makes it allocate
// without bound, and whatever it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	d := testDelivery("evt_1.0", "crm", "howxm")
	f.Add(AppendRecord(nil, &d))
	f.Add(AppendRecord(nil, &delivery.Delivery{}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out delivery.Delivery
		if err := DecodeRecord(b, &out); err != nil {
			return
		}
		again := AppendRecord(nil, &out)
		var out2 delivery.Delivery
		if err := DecodeRecord(again, &out2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if string(AppendRecord(nil, &out2)) != string(again) {
			t.Fatal("encoding is not stable")
		}
	})
}

// FuzzDecodeSide: the small side records never crash their decoders.
func FuzzDecodeSide(f *testing.F) {
	f.Add(appendPending(nil, "crm", 1, 2, 3, 4, &ordering{}))
	f.Add(appendPending(nil, "crm", 1, 2, 3, 4, &ordering{ordered: true, order: 7, id: orderIDOf([]byte("k"))}))
	f.Add(appendDead(nil, &deadInfo{target: []byte("crm"), route: []byte("r"), size: 9, attempts: 2}))
	f.Add(appendAttempt(nil, &delivery.Attempt{Status: 503, Error: "x", Body: []byte("y")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePending(b); err == nil {
			if _, err := decodePending(appendPending(nil, string(p.target), p.due, p.enqueued, p.size, p.attempts, &p.ord)); err != nil {
				t.Fatalf("pending re-encoding: %v", err)
			}
		}
		decodeDead(b)
		decodeAttempt(b)
	})
}
