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
	p, err := decodePending(appendPending(nil, "crm", 5, -7, 99, 3))
	if err != nil || string(p.target) != "crm" || p.due != 5 || p.enqueued != -7 || p.size != 99 || p.attempts != 3 {
		t.Fatalf("pending %+v %v", p, err)
	}
	if len(appendPending(nil, "crm", 5, -7, 99, 3)) != pendingLen("crm", 5, -7, 99, 3) {
		t.Fatal("pendingLen disagrees with appendPending")
	}
	di := deadInfo{target: []byte("crm"), route: []byte("howxm"), enqueued: 1, deadAt: 2, size: 3, attempts: 4}
	got, err := decodeDead(appendDead(nil, &di))
	if err != nil || !reflect.DeepEqual(got, di) {
		t.Fatalf("dead %+v %v", got, err)
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
	f.Add(appendPending(nil, "crm", 1, 2, 3, 4))
	f.Add(appendDead(nil, &deadInfo{target: []byte("crm"), route: []byte("r"), size: 9, attempts: 2}))
	f.Add(appendAttempt(nil, &delivery.Attempt{Status: 503, Error: "x", Body: []byte("y")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePending(b); err == nil {
			if _, err := decodePending(appendPending(nil, string(p.target), p.due, p.enqueued, p.size, p.attempts)); err != nil {
				t.Fatalf("pending re-encoding: %v", err)
			}
		}
		decodeDead(b)
		decodeAttempt(b)
	})
}
