package dispatch

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

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

// startCounted starts a dispatcher for the one target cfg on a real
// store, whose Claim calls are counted, with n deliveries ready before it
// starts; all of it is stopped at the end of the test.
func startCounted(t *testing.T, cfg config.Target, poll time.Duration, n int) (*queue.Store, *claimCounter) {
	t.Helper()
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	set, err := target.NewSet([]config.Target{cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	cc := &claimCounter{Engine: st}
	d := New(cc, set, []config.Target{cfg}, Options{Poll: poll})
	ds := make([]delivery.Delivery, n)
	for i := range ds {
		ds[i] = del(fmt.Sprintf("evt_%d.0", i), cfg.Name)
	}
	if err := d.Enqueue(ds); err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
	})
	return st, cc
}

// TestClaimsInBatches: a lane whose workers are all idle claims the ready
// deliveries for all of them in one call to the store (one lock, one
// wake of the feeder), not one call per delivery, and each is sent once.
func TestClaimsInBatches(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfg := targetFor("crm", s)
	cfg.MaxConns = 8
	// Stored before the lane starts: its 8 idle workers find 8 ready.
	_, cc := startCounted(t, cfg, 50*time.Millisecond, 8)
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

// TestWorkersFreedTogetherClaimTogether: on one P, workers whose answers
// come in together go back to the feeder together, and the feeder claims
// for all of them at once, so their next sends go out back to back and
// the target takes them in one wake-up. Without the feeder's yield, the
// first worker back hands it the P at once (Go runs a goroutine it
// readies next), and each worker gets a claim of its own. The target
// here holds the first 8 requests until all 8 have arrived, then answers
// them together; 8 more deliveries are ready by then.
func TestWorkersFreedTogetherClaimTogether(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const workers = 8
	var arrived atomic.Int32
	release := make(chan struct{})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if arrived.Add(1) == workers {
			close(release)
		}
		<-release
		ctx.SetStatusCode(fasthttp.StatusOK)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	u, err := url.Parse("http://" + ln.Addr().String() + "/crm")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Target{Name: "crm", URL: u, Timeout: 5 * time.Second, MaxConns: workers, IDHeader: idHeader,
		Retry: config.Retry{MaxAttempts: 5, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, MaxAge: time.Hour}}
	st, cc := startCounted(t, cfg, time.Hour, 2*workers)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n := st.Stats()["crm"].Depth; n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries left after 10 s: %+v", st.Stats()["crm"])
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first claim takes 8 for the 8 idle workers; the 8 after it are
	// claimed when the workers come back. The runtime checks its global
	// queue, where the yield puts the feeder, once in 61 turns ahead of
	// the local one, so an early claim now and then is allowed for.
	if n, got := cc.claims.Load(), cc.claimed.Load(); got != 2*workers || n > 4 {
		t.Fatalf("%d deliveries took %d claims (%d deliveries claimed); want at most 4: the workers freed together should claim together", 2*workers, n, got)
	}
	t.Logf("%d deliveries in %d claims", 2*workers, cc.claims.Load())
}
