package dispatch

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
)

// claimCounter is the real store, with its Claim calls counted.
type claimCounter struct {
	queue.Engine
	claims, claimed atomic.Int64 // calls that returned deliveries; deliveries returned
}

func (c *claimCounter) Claim(dst []queue.Leased, target string, now time.Time, max int, leaseFor time.Duration) ([]queue.Leased, error) {
	dst, err := c.Engine.Claim(dst, target, now, max, leaseFor)
	if len(dst) > 0 {
		c.claims.Add(1)
		c.claimed.Add(int64(len(dst)))
	}
	return dst, err
}

// TestClaimsInBatches: a lane whose workers are all idle claims the ready
// deliveries for all of them in one call to the store (one lock, one
// wake of the feeder), not one call per delivery, and each is sent once.
func TestClaimsInBatches(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfg := targetFor("crm", s)
	cfg.MaxConns = 8
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	set, err := target.NewSet([]config.Target{cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	cc := &claimCounter{Engine: st}
	d := New(cc, set, []config.Target{cfg}, Options{Poll: 50 * time.Millisecond})
	ds := make([]delivery.Delivery, 8)
	for i := range ds {
		ds[i] = del(fmt.Sprintf("evt_%d.0", i), "crm")
	}
	// Stored before the lane starts: its 8 idle workers find 8 ready.
	if err := d.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
	}()
	reqs, err := s.Wait(8, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		id := r.Headers[idHeader]
		if seen[id] {
			t.Fatalf("delivery %s sent twice", id)
		}
		seen[id] = true
	}
	if n, got := cc.claims.Load(), cc.claimed.Load(); n != 1 || got != 8 {
		t.Fatalf("8 ready deliveries for 8 idle workers took %d claims of %d deliveries in all; want 1 claim of 8", n, got)
	}
}
