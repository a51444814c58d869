package natsq

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/natstest"
)

// The engine is a queue.Shared: an Enqueue on one gateway wakes the
// other's lane for that target, and both count two gateways.
func TestEnqueueWakesOtherGateway(t *testing.T) {
	s := natstest.Start(t)
	a := openEngine(t, []string{s.URL()}, Options{})
	b := openEngine(t, []string{s.URL()}, Options{})
	var sh queue.Shared = b
	woke := make(chan string, 16)
	var selfWoke atomic.Int64
	a.Notify(func(string) { selfWoke.Add(1) })
	sh.Notify(func(target string) {
		select {
		case woke <- target:
		default:
		}
	})
	if err := a.Enqueue([]delivery.Delivery{dlv("w1", "crm.eu", "r", "x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-woke:
		if got != "crm.eu" {
			t.Fatalf("the other gateway was woken for %q, want crm.eu", got)
		}
	case <-time.After(engineWait):
		t.Fatal("the other gateway was never woken")
	}
	if n := selfWoke.Load(); n != 0 {
		t.Fatalf("the enqueuing gateway woke itself %d times", n)
	}
	deadline := time.Now().Add(engineWait)
	for a.Gateways() != 2 || b.Gateways() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("Gateways() = %d and %d, want 2 on both", a.Gateways(), b.Gateways())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Dedupe() == nil {
		t.Fatal("Dedupe() is nil")
	}
}
