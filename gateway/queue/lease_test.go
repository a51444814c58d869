package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// A worker whose lease ran out (a paused process, a stalled machine) must
// not act on a delivery that another worker has claimed since: its Ack
// would remove the delivery mid-send, its Retry would hand it to a third
// worker while the second still sends it.
func TestStaleHolderCannotTouchAReclaimedDelivery(t *testing.T) {
	s, a, now := claimedOne(t)
	stale := a[0].Ref
	// A's lease ends; B claims the delivery.
	b, _ := s.Claim(nil, "crm", now.Add(time.Minute), 10, time.Minute)
	if len(b) != 1 || string(b[0].Delivery.ID) != "evt_1.0" {
		t.Fatalf("claim after the lease ended: %+v", b)
	}
	if b[0].Ref == stale {
		t.Fatalf("the second claim got the first claim's Ref %d", stale)
	}
	at := delivery.Attempt{At: now, Error: "stalled"}
	for name, call := range map[string]func() error{
		"Ack":     func() error { return s.Ack(stale) },
		"Retry":   func() error { return s.Retry(stale, now, at) },
		"Dead":    func() error { return s.Dead(stale, at) },
		"Release": func() error { return s.Release(stale) },
	} {
		if err := call(); !errors.Is(err, ErrNotLeased) {
			t.Errorf("%s from the stale holder = %v; want ErrNotLeased", name, err)
		}
	}
	// B still holds it: nobody else can claim it, and B's Ack removes it.
	if c, _ := s.Claim(nil, "crm", now.Add(time.Minute+time.Second), 10, time.Minute); len(c) != 0 {
		t.Fatalf("a third worker claimed %d deliveries while B held it", len(c))
	}
	if st := s.Stats()["crm"]; st.Depth != 1 || st.Dead != 0 {
		t.Fatalf("stats after the stale calls: %+v; want depth 1, none dead", st)
	}
	if err := s.Ack(b[0].Ref); err != nil {
		t.Fatalf("B's Ack: %v", err)
	}
	if st := s.Stats()["crm"]; st.Depth != 0 {
		t.Fatalf("depth after B's Ack: %d", st.Depth)
	}
}

// A holder whose lease ran out while nobody claimed the delivery again is
// still its latest claimant: its Ack is taken, so a delivery that went out
// is not sent twice.
func TestExpiredButUnclaimedAckIsTaken(t *testing.T) {
	s, a, now := claimedOne(t)
	// A claim of another target's... nothing: a later Claim for crm with
	// max 0 makes the expired lease ready again without taking it.
	if got, _ := s.Claim(nil, "crm", now.Add(2*time.Minute), 0, time.Minute); len(got) != 0 {
		t.Fatalf("a claim of 0 took %d", len(got))
	}
	if err := s.Ack(a[0].Ref); err != nil {
		t.Fatalf("Ack after the lease ended, nobody else holding it: %v", err)
	}
	if got, _ := s.Claim(nil, "crm", now.Add(3*time.Minute), 10, time.Minute); len(got) != 0 {
		t.Fatalf("an acked delivery was claimed again: %d", len(got))
	}
}

// A Retry being written keeps its lease even past its end: the Retry
// makes the delivery ready when it commits, and a claim in between must
// not hand it to another worker.
func TestExpiryLeavesABusyEntry(t *testing.T) {
	s, a, now := claimedOne(t)
	s.mu.Lock()
	e := s.entries[a[0].seq]
	e.busy = true // as Retry sets it while its batch commits
	s.mu.Unlock()
	if got, _ := s.Claim(nil, "crm", now.Add(2*time.Minute), 10, time.Minute); len(got) != 0 {
		t.Fatalf("a delivery whose Retry was being written was claimed again")
	}
	s.mu.Lock()
	e.busy = false
	s.mu.Unlock()
	if got, _ := s.Claim(nil, "crm", now.Add(3*time.Minute), 10, time.Minute); len(got) != 1 {
		t.Fatalf("after the Retry, the expired lease was not made ready: %d", len(got))
	}
}

// claimedOne opens a store (closed when the test ends), enqueues one
// delivery for crm and claims it with a one-minute lease at now.
func claimedOne(t *testing.T) (s *Store, claimed []Leased, now time.Time) {
	t.Helper()
	s = openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { s.Close() })
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_1.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	now = time.Now()
	if claimed, _ = s.Claim(nil, "crm", now, 10, time.Minute); len(claimed) != 1 {
		t.Fatalf("claim: %d deliveries", len(claimed))
	}
	return s, claimed, now
}
