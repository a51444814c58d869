package console

import (
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/journal"
)

// TestTailerOrder: the live tail sends each event once, when it has been
// answered; an event still being handled holds the cursor (so it is sent
// later) without holding back the answered ones after it; one whose
// answer never comes stops holding after tailStuck; events known only
// from a delivery attempt (queued before a restart) are not sent.
func TestTailerOrder(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	ev := func(id string, status int, recv *time.Time) journal.Event {
		return journal.Event{ID: id, Status: status, ReceivedAt: recv}
	}
	tl := tailer{cursor: "-", sent: map[string]bool{}}
	ids := func(evs []journal.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	check := func(got []journal.Event, cursor string, want ...string) {
		t.Helper()
		if !slices.Equal(ids(got), want) || tl.cursor != cursor {
			t.Fatalf("sent %v with cursor %q, want %v with cursor %q", ids(got), tl.cursor, want, cursor)
		}
	}
	a, b, c := ev("a", 202, at(time.Second)), ev("b", 0, at(time.Second)), ev("c", 200, at(time.Second))
	check(tl.next([]journal.Event{a, b, c}, now), "a", "a", "c")
	// The journal is read again from the cursor: b is still in progress.
	check(tl.next([]journal.Event{b, c}, now), "a")
	b.Status = 502
	check(tl.next([]journal.Event{b, c}, now), "c", "b")
	// A partial event is passed over, an answered one after it is sent.
	p := ev("p", 0, nil)
	p.Partial = true
	check(tl.next([]journal.Event{p, ev("d", 202, at(0))}, now), "d", "d")
	// An event never answered holds the others only for tailStuck.
	stuck := ev("s", 0, at(time.Second))
	e := ev("e", 202, at(0))
	check(tl.next([]journal.Event{stuck, e}, now), "d", "e")
	check(tl.next([]journal.Event{stuck, e}, now.Add(tailStuck+time.Second)), "e")
	if len(tl.sent) != 0 {
		t.Fatalf("sent set not emptied: %v", tl.sent)
	}
}
