package gateway

import (
	"strings"
	"testing"
	"time"
)

func TestEventID(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	prev := ""
	at := time.UnixMilli(1_700_000_000_000)
	for i := range n {
		id := string(appendEventID(nil, at.Add(time.Duration(i/100)*time.Millisecond)))
		if len(id) != eventIDLen || !strings.HasPrefix(id, "evt_") || strings.Trim(id[4:], crockford) != "" {
			t.Fatalf("malformed id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q after %d", id, i)
		}
		seen[id] = true
		// Within a millisecond the sequence orders ids; across
		// milliseconds the time prefix does.
		if id <= prev {
			t.Fatalf("id %q sorts before the previous %q", id, prev)
		}
		prev = id
	}
	if got := string(appendDeliveryID(nil, []byte("evt_x"), 12)); got != "evt_x.12" {
		t.Errorf("delivery id %q", got)
	}
}
