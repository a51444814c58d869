//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package gateway

import (
	"bytes"
	"context"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestAsyncIngestAllocs is TestHotPathAllocs for an async route: the
// ingest handler (route, JSON check, event, deliveries) hands the
// deliveries to the real dispatcher's Enqueue, which commits them to a
// real Pebble store (gateway/queue) in a temporary directory, and answers
// 202 {"event_id"}; once warm, nothing of that allocates. The count is
// testing.AllocsPerRun's, as in the sync tests: every goroutine of the
// process, Pebble's commit pipeline and log writer (its fsync, with sync
// "always") included.
//
// In the "queued" cases the dispatcher is built with the target's lane
// (so Enqueue runs as it does in production: fifo sequencing, the store,
// the lane's wake) but never started: no delivery worker runs, and the
// count is the ingest path's alone. Deliveries stay queued, so each
// request adds one pending entry per delivery to the store's memory; in
// production a worker's ack gives that entry back for a later Enqueue
// to reuse (queue.Store.drop). The warm-up does the same by draining the
// queue with Claim and Ack once, so the measured requests find recycled
// entries and map and heap capacity, as they would in steady state,
// rather than the memory of a queue that only grows.
//
// The "delivered" case starts the dispatcher and waits, each request,
// for the target to have the delivery: the whole async life of a request
// (ingest, enqueue, claim, send, ack) in steady state. It counts the
// worker and the target too, whose own path is TestAsyncPathAllocs's
// (package dispatch); a failure here that the queued cases do not show
// is theirs.
func TestAsyncIngestAllocs(t *testing.T) {
	tests := []struct {
		name string
		opts asyncOpts
	}{
		{name: "queued, sync=batch", opts: asyncOpts{sync: queue.SyncBatch, targets: 1}},
		{name: "queued, sync=batch, fan-out to two targets", opts: asyncOpts{sync: queue.SyncBatch, targets: 2}},
		{name: "queued, sync=batch, metrics", opts: asyncOpts{sync: queue.SyncBatch, targets: 1, metrics: true}},
		{name: "queued, sync=always", opts: asyncOpts{sync: queue.SyncAlways, targets: 1}},
		{name: "delivered, sync=batch", opts: asyncOpts{sync: queue.SyncBatch, targets: 1, deliver: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAsyncPath(t, tc.opts)
			a.warm(t)
			if n := testing.AllocsPerRun(asyncRuns, func() { a.cycle(t) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
			a.check(t)
		})
	}
}

// asyncWarm requests warm the pools (request state, Pebble's batches,
// interned names); asyncRuns are measured (AllocsPerRun makes one more).
// In the queued cases the 20 requests after the drain and the measured
// ones must not outnumber the asyncWarm entries the drain recycled, or
// each would allocate its entry (1 per delivery, which the test would
// report). What is left is Pebble's: about 35 objects on the committing
// goroutine each time a memtable fills and is rotated with its log
// (makeRoomForWrite: 256 KiB at first, doubling up to the store's
// 16 MiB), which AllocsPerRun's whole-number average, as in every
// allocation test here, rounds away.
const (
	asyncWarm = 300
	asyncRuns = 200
)

type asyncOpts struct {
	sync    string // queue.SyncBatch or queue.SyncAlways
	targets int    // the route's targets: deliveries per request
	metrics bool   // Prometheus counters and histogram per request
	deliver bool   // start the dispatcher and wait for each delivery
}

// asyncPath is hotPath for an async route: a gateway that is not
// listening, a request context driven through its handler again and
// again as fasthttp's server does, and the queue behind it.
type asyncPath struct {
	hotPath
	o     asyncOpts
	store *queue.Store
	d     *dispatch.Dispatcher
	sinks []*sink.Sink
	names []string
	ls    []queue.Leased // drain's buffer
	sent  int            // requests answered 202
}

func newAsyncPath(t *testing.T, o asyncOpts) *asyncPath {
	t.Helper()
	payload, err := os.ReadFile("../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	a := &asyncPath{o: o}
	cfg := &config.Config{Server: testServer()}
	route := config.Route{Name: "howxm", Method: "POST", Path: "/hooks/howxm", Mode: config.ModeAsync, JSON: true}
	for i := range o.targets {
		s := startSink(t, sink.Options{Discard: true}) // 127.0.0.1
		name := string(rune('a' + i))
		cfg.Targets = append(cfg.Targets, targetAt(t, name, s.URL()+"/crm"))
		route.Targets = append(route.Targets, name)
		a.sinks = append(a.sinks, s)
		a.names = append(a.names, name)
	}
	cfg.Routes = []config.Route{route}
	deps := newDeps(t, cfg)

	a.store, err = queue.Open(queue.Options{Path: t.TempDir(), Sync: o.sync})
	if err != nil {
		t.Fatal(err)
	}
	a.d = dispatch.New(a.store, deps.Targets, cfg.Targets, dispatch.Options{Logger: quietLogger(), Poll: 50 * time.Millisecond})
	if o.deliver {
		a.d.Start()
	}
	t.Cleanup(func() { // after the gateway's (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.d.Stop(ctx)
		a.store.Close()
	})
	deps.Queue, deps.Disabled = a.d, a.d // as internal/server wires them
	a.g = newMeasured(t, cfg, deps, o.metrics)

	var req fasthttp.Request
	howxmRequest(&req, payload)
	a.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return a
}

// serve is one request through the handler; it must be answered 202
// with the event id the handler put in the header.
func (a *asyncPath) serve(t *testing.T) {
	a.ctx.Response.Reset()
	a.g.handle(&a.ctx)
	if st := a.ctx.Response.StatusCode(); st != fasthttp.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", st, a.ctx.Response.Body())
	}
	id := a.ctx.Response.Header.PeekBytes(hdrEventID)
	if body := a.ctx.Response.Body(); len(id) == 0 || !bytes.HasPrefix(body, []byte(`{"event_id":"`)) || !bytes.Contains(body, id) {
		t.Fatalf("answer %s, event id %q", body, id)
	}
	a.sent++
}

// cycle is what is measured: one request, and in the delivered cases
// its delivery to every target.
func (a *asyncPath) cycle(t *testing.T) {
	a.serve(t)
	if a.o.deliver {
		a.waitDelivered(t)
	}
}

func (a *asyncPath) waitDelivered(t *testing.T) {
	deadline := time.Now().Add(time.Minute) // a failure timeout, not a measurement
	for _, s := range a.sinks {
		for s.Count() < a.sent {
			if time.Now().After(deadline) {
				t.Fatalf("target delivered %d of %d", s.Count(), a.sent)
			}
			runtime.Gosched()
		}
	}
}

// warm serves asyncWarm requests; in the queued cases it then drains the
// queue as the workers would (Claim, Ack), so the store holds recycled
// entries for more than the measured requests, and serves a few more.
func (a *asyncPath) warm(t *testing.T) {
	for range asyncWarm {
		a.cycle(t)
	}
	if a.o.deliver {
		return
	}
	if got := a.drain(t); got != asyncWarm {
		t.Fatalf("drained %d deliveries per target, want the %d served", got, asyncWarm)
	}
	a.sent = 0
	for range 20 {
		a.serve(t)
	}
}

// drain claims and acks every queued delivery of every target, and
// returns how many each had (all the same, or it fails).
func (a *asyncPath) drain(t *testing.T) int {
	n := -1
	for _, name := range a.names {
		got := 0
		for {
			var err error
			a.ls, err = a.store.Claim(a.ls[:0], name, time.Now(), 64, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.ls) == 0 {
				break
			}
			for i := range a.ls {
				if !bytes.Equal(a.ls[i].Delivery.Body, a.ctx.Request.Body()) {
					t.Fatalf("queued delivery for %s has body %.40q..., not the request's", name, a.ls[i].Delivery.Body)
				}
				if err := a.store.Ack(a.ls[i].Ref); err != nil {
					t.Fatal(err)
				}
			}
			got += len(a.ls)
		}
		if n >= 0 && got != n {
			t.Fatalf("target %s had %d deliveries, another %d", name, got, n)
		}
		n = got
	}
	return n
}

// check proves the measured requests went where an async route's go: to
// the queue (queued cases: still there, one per target and request), or
// through it to the targets (delivered: the queue is empty again).
func (a *asyncPath) check(t *testing.T) {
	t.Helper()
	stats := a.store.Stats()
	for i, name := range a.names {
		depth := stats[name].Depth
		if a.o.deliver {
			if c := a.sinks[i].Count(); c != a.sent {
				t.Errorf("target %s got %d deliveries, want %d", name, c, a.sent)
			}
			// The ack follows the target's answer: give it a moment.
			for deadline := time.Now().Add(10 * time.Second); depth != 0 && time.Now().Before(deadline); depth = a.store.Stats()[name].Depth {
				time.Sleep(10 * time.Millisecond)
			}
			if depth != 0 {
				t.Errorf("target %s: %d deliveries still queued, want 0", name, depth)
			}
			continue
		}
		if depth != a.sent {
			t.Errorf("target %s: %d deliveries queued, want %d (one per request)", name, depth, a.sent)
		}
		if c := a.sinks[i].Count(); c != 0 {
			t.Errorf("target %s got %d deliveries with no worker running", name, c)
		}
	}
	if a.sent < asyncRuns {
		t.Errorf("%d requests served, want at least the %d measured", a.sent, asyncRuns)
	}
}
