package journal

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// TestAfter: a reader that remembers the last event id it saw gets every
// later event once, oldest first, before and after the ring goes round;
// an id the journal forgot (or never had) reads from the oldest event
// it holds. The console's live tail follows the journal this way.
func TestAfter(t *testing.T) {
	j := New(8)
	add := func(i int) {
		ev := delivery.Event{ID: fmt.Appendf(nil, "evt_%d", i), Route: "r", ReceivedAt: time.Now().UnixNano()}
		j.Chain(&ev, &delivery.Outcome{}, nil)
	}
	ids := func(after string, limit int) []string {
		var out []string
		for _, ev := range j.After(after, limit) {
			out = append(out, ev.ID)
		}
		return out
	}
	check := func(after string, limit int, want ...string) {
		t.Helper()
		if got := ids(after, limit); !slices.Equal(got, want) {
			t.Errorf("After(%q, %d) = %v, want %v", after, limit, got, want)
		}
	}
	check("", 10)
	for i := 1; i <= 3; i++ {
		add(i)
	}
	check("", 10, "evt_1", "evt_2", "evt_3")
	check("", 2, "evt_2", "evt_3")
	check("evt_1", 10, "evt_2", "evt_3")
	check("evt_3", 10)
	check("evt_unknown", 3, "evt_1", "evt_2", "evt_3") // the ring has not gone round
	for i := 4; i <= 10; i++ {
		add(i) // evt_1 and evt_2 are forgotten
	}
	all := []string{"evt_3", "evt_4", "evt_5", "evt_6", "evt_7", "evt_8", "evt_9", "evt_10"}
	check("evt_1", 10, all...)
	check("evt_1", 3, all[:3]...)
	check("evt_8", 10, "evt_9", "evt_10")
	check("evt_8", 1, "evt_9")
	check("evt_10", 10)
	check("", 2, "evt_9", "evt_10")
	check("", 100, all...)
	if got := (*Journal)(nil).After("", 1); got != nil {
		t.Errorf("nil journal: %v", got)
	}
}
