//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package dispatch

import (
	"context"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

func TestJudgeAllocatesNothing(t *testing.T) {
	cfg := config.Success{Status: []int{200}, JSONPath: "status", JSONEquals: "true"}
	body := []byte(`{"status":true,"id":12}`)
	if n := testing.AllocsPerRun(100, func() { Judge(cfg, 200, body) }); n != 0 {
		t.Fatalf("Judge allocates %.0f times", n)
	}
}

// TestAsyncPathAllocs: the async hot path, from Dispatcher.Enqueue (what
// ingest calls once an event's deliveries are built) through the store's
// group commit, the feeder's claim, the worker's send to a real fasthttp
// target over loopback, and the ack, allocates nothing once warm. The
// count covers every goroutine of the process (testing.AllocsPerRun reads
// the runtime's malloc count), the target's server included. The same
// for a target with order = "fifo", as one sequence and keyed by a JSON
// path in the body.
func TestAsyncPathAllocs(t *testing.T) {
	keyed := []byte(`{"customer":{"uid":"u-1234"},"pad":"` + strings.Repeat("x", 1000) + `"}`)
	// The fifo cases commit with sync "batch": what they add is the
	// sequence, not the fsync that "plain" covers, and each fsync'd case
	// takes seconds on a shared disk.
	for _, tt := range []struct {
		name, order, key, sync string
		body                   []byte
	}{
		{"plain", "", "", queue.SyncAlways, make([]byte, 1024)},
		{"fifo", config.OrderFIFO, "", queue.SyncBatch, make([]byte, 1024)},
		{"fifo/order_key", config.OrderFIFO, "customer.uid", queue.SyncBatch, keyed},
	} {
		t.Run(tt.name, func(t *testing.T) { asyncPathAllocs(t, tt.order, tt.key, tt.sync, tt.body) })
	}
}

func asyncPathAllocs(t *testing.T, order, orderKey, sync string, body []byte) {
	var got atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusOK)
		got.Add(1)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	u, err := url.Parse("http://" + ln.Addr().String() + "/crm")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Target{Name: "crm", URL: u, Timeout: 3 * time.Second, MaxConns: 4, IDHeader: "Idempotency-Key",
		Retry: config.Retry{MaxAttempts: 5, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, MaxAge: time.Hour},
		Order: order, OrderKey: orderKey}
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: sync})
	if err != nil {
		t.Fatal(err)
	}
	set, err := target.NewSet([]config.Target{cfg})
	if err != nil {
		t.Fatal(err)
	}
	d := New(st, set, []config.Target{cfg}, Options{Poll: 50 * time.Millisecond})
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
		st.Close()
		set.Close()
	})

	ds := []delivery.Delivery{{ID: []byte("evt_alloc.0"), EventID: []byte("evt_alloc"), Route: "r", Target: "crm",
		Method: []byte("POST"), Body: body}}
	want := int64(0)
	deadline := time.Now().Add(time.Minute) // a failure timeout, not a measurement
	cycle := func() {
		if err := d.Enqueue(ds); err != nil {
			t.Fatal(err)
		}
		want++
		for got.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("delivered %d of %d", got.Load(), want)
			}
			runtime.Gosched()
		}
	}
	for range 300 { // warm up: connections, pools, pebble's batch pools, interned names
		cycle()
	}
	if n := testing.AllocsPerRun(300, cycle); n > 0 {
		t.Fatalf("enqueue -> claim -> send -> ack of one delivery allocates %.2f times", n)
	}
}
