package queue

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// TestEnqueueCallsShareBatches: on one P, Enqueue calls from senders
// running together are committed in shared batches, and every delivery
// of every call is stored; a lone sender's calls each get their own.
func TestEnqueueCallsShareBatches(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	dir := t.TempDir()
	// "always": with "batch" an Enqueue is staged, not written (stage.go).
	s := openTest(t, dir, Options{Sync: SyncAlways})

	for i := range 10 {
		if err := s.Enqueue([]delivery.Delivery{testDelivery(fmt.Sprintf("evt_lone_%d.0", i), "crm", "r")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.batches.Load(); n != 10 {
		t.Fatalf("a lone sender's 10 calls made %d batches, want 10", n)
	}

	const senders, calls = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, senders*calls)
	for g := range senders {
		wg.Go(func() {
			for i := range calls {
				// Two deliveries a call: a group keeps each call whole.
				ds := []delivery.Delivery{
					testDelivery(fmt.Sprintf("evt_%d_%d.0", g, i), "crm", "r"),
					testDelivery(fmt.Sprintf("evt_%d_%d.1", g, i), "sms", "r"),
				}
				if err := s.Enqueue(ds); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := s.batches.Load() - 10
	if n > senders*calls/4 {
		t.Fatalf("%d concurrent calls made %d batches, want them shared", senders*calls, n)
	}
	t.Logf("%d concurrent calls in %d batches", senders*calls, n)

	// Everything is stored, through a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Sync: SyncAlways})
	defer s.Close()
	want := map[string]int{"crm": 10 + senders*calls, "sms": senders * calls}
	for target, n := range want {
		ls, err := s.Claim(nil, target, time.Now().Add(time.Second), 1<<20, time.Minute)
		if err != nil || len(ls) != n {
			t.Fatalf("%s: %d stored after a restart, want %d (%v)", target, len(ls), n, err)
		}
	}
}
