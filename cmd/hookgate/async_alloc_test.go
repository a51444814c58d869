//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
)

// TestAsyncPluginPathAllocs is TestPluginPathAllocs for an async route:
// ingest, the howxm-nps plugin (whose ticket is an emitted delivery, not
// the default one), the dispatcher's Enqueue into a real Pebble store
// with sync "batch", and the 202 answer. As in package gateway's
// TestAsyncIngestAllocs (which says why at length), the dispatcher is not
// started, so the count is the ingest path's alone, and the warm-up
// drains the queue once with Claim and Ack so that the measured requests
// reuse the store's entries as they would once workers ack.
func TestAsyncPluginPathAllocs(t *testing.T) {
	cfg, set, host, payload, s := howxmRoute(t, config.ModeAsync)
	store, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(store, set, cfg.Targets, dispatch.Options{Logger: slog.New(slog.DiscardHandler)}) // never started
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
		store.Close()
	})
	g, err := gateway.New(cfg, gateway.Deps{Targets: set, Chains: newChainBuilder(host), Queue: d, Disabled: d,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	p := newHandlerPath(g.Handler(), payload)

	sent := 0
	serve := func() {
		p.ctx.Response.Reset()
		p.h(&p.ctx)
		if st := p.ctx.Response.StatusCode(); st != fasthttp.StatusAccepted {
			t.Fatalf("status %d, want 202: %s", st, p.ctx.Response.Body())
		}
		sent++
	}
	for range 300 {
		serve()
	}
	var ls []queue.Leased
	drained := 0
	for {
		ls, err = store.Claim(ls[:0], "crm", time.Now(), 64, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) == 0 {
			break
		}
		for i := range ls {
			// The plugin's ticket, not the sender's payload.
			if bytes.Equal(ls[i].Delivery.Body, payload) || len(ls[i].Delivery.Body) == 0 {
				t.Fatalf("queued delivery has body %.60q, want the plugin's ticket", ls[i].Delivery.Body)
			}
			if err := store.Ack(ls[i].Ref); err != nil {
				t.Fatal(err)
			}
		}
		drained += len(ls)
	}
	if drained != sent {
		t.Fatalf("drained %d deliveries, want the %d served", drained, sent)
	}
	sent = 0
	for range 20 {
		serve()
	}
	if n := testing.AllocsPerRun(200, serve); n > pluginCallAllocs {
		t.Errorf("%v allocations per request, want at most %d", n, pluginCallAllocs)
	}
	if depth := store.Stats()["crm"].Depth; depth != sent {
		t.Errorf("%d deliveries queued, want %d (one ticket per request)", depth, sent)
	}
	if c := s.Count(); c != 0 {
		t.Errorf("target got %d deliveries with no worker running", c)
	}
}
