package dedupe

import (
	"errors"
	"testing"
)

// TestKeyFallback: a standard-webhooks route's default dedupe keys on
// webhook-id, or on svix-id when a Svix sender uses its own header names,
// the same order verify picks the family in; the id that was signed.
func TestKeyFallback(t *testing.T) {
	d := mustNew(t, Spec{Header: "webhook-id", Fallback: "svix-id"})
	tests := []struct {
		name    string
		headers headers
		want    string
		ok      bool
	}{
		{"standard names", headers{"webhook-id": []byte("msg_1")}, "msg_1", true},
		{"svix names", headers{"svix-id": []byte("msg_2")}, "msg_2", true},
		{"both: the header first", headers{"webhook-id": []byte("msg_1"), "svix-id": []byte("msg_2")}, "msg_1", true},
		{"empty header, fallback", headers{"webhook-id": []byte(""), "svix-id": []byte("msg_2")}, "msg_2", true},
		{"neither", headers{"Idempotency-Key": []byte("k")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, ok := d.Key(tt.headers.peek, nil, make([]byte, 0, 64))
			if string(key) != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", key, ok, tt.want, tt.ok)
			}
		})
	}
	// The same message id under either family is one message.
	if _, seen := d.Check([]byte("msg_3"), []byte("evt_a")); seen {
		t.Fatal("a first copy was seen")
	}
	k, _ := d.Key(headers{"svix-id": []byte("msg_3")}.peek, nil, nil)
	if first, dup := d.Check(k, []byte("evt_b")); !dup || string(first) != "evt_a" {
		t.Fatalf("msg_3 under svix-id: duplicate %v of %q, want a duplicate of evt_a", dup, first)
	}

	if a, b := (Spec{Header: "webhook-id", Fallback: "svix-id"}), (Spec{Header: "webhook-id"}); a.Equal(b) {
		t.Error("specs that differ in fallback are equal")
	}
	_, err := New(Spec{JSON: []string{"id"}, Fallback: "svix-id"})
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "fallback" {
		t.Errorf("fallback with json: %v, want a fallback problem", err)
	}
}
