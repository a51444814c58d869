package queue

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// TestReady: Ready counts a target's deliveries that wait unclaimed, due
// now or scheduled by a retry, and not those leased, those behind the head
// of their sequence, acked ones, or another target's.
func TestReady(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	ready := func(want int) {
		t.Helper()
		if got := s.Ready("crm"); got != want {
			t.Fatalf("Ready(crm) = %d, want %d", got, want)
		}
	}
	ready(0) // a target never seen
	enqueue(t, s, testDelivery("evt_1.0", "crm", "r"), testDelivery("evt_2.0", "crm", "r"), testDelivery("evt_3.0", "crm", "r"),
		testDelivery("evt_1.1", "sms", "r"))
	ready(3)
	if got := s.Ready("sms"); got != 1 {
		t.Fatalf("Ready(sms) = %d, want 1", got)
	}

	now := time.Now()
	got, err := s.Claim(nil, "crm", now, 2, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("claimed %v, %v; want 2", ids(got), err)
	}
	ready(1) // leased ones are not waiting
	if err := s.Ack(got[0].Ref); err != nil {
		t.Fatal(err)
	}
	ready(1)
	// A retry scheduled for later waits again, though it is not due yet.
	if err := s.Retry(got[1].Ref, now.Add(time.Hour), delivery.Attempt{At: now, Status: 503}); err != nil {
		t.Fatal(err)
	}
	ready(2)

	// Of a sequence, only the head waits to be claimed; the rest wait
	// behind it and are not the lane's to take yet.
	enqueue(t, s, ordered("evt_a1.0", "A"), ordered("evt_a2.0", "A"), ordered("evt_a3.0", "A"))
	ready(3)
}
