//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package gateway

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestHotPathAllocs proves the sync passthrough (route, event, deliveries,
// forward over a pooled connection, answer) allocates nothing per request
// once warm. The count covers every goroutine: the target client and the
// sink included.
func TestHotPathAllocs(t *testing.T) {
	tests := []struct {
		name string
		opts hotOpts
	}{
		{name: "one target", opts: hotOpts{targets: 1}},
		{name: "one target, json check", opts: hotOpts{targets: 1, json: true}},
		{name: "fan-out to two targets", opts: hotOpts{targets: 2}},
		{name: "fan-out to three targets", opts: hotOpts{targets: 3}},
		{name: "hmac verify with two secrets", opts: hotOpts{targets: 1, json: true, verify: true}},
		{name: "verify and a repeated dedupe key", opts: hotOpts{targets: 1, json: true, verify: true, dedupe: true}},
		{name: "verify, dedupe and metrics", opts: hotOpts{targets: 1, json: true, verify: true, dedupe: true, metrics: true}},
		{name: "one target with metrics", opts: hotOpts{targets: 1, json: true, metrics: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPathWith(t, tc.opts)
			for range 50 {
				h.serve(t)
			}
			if n := testing.AllocsPerRun(200, func() { h.serve(t) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
			if dup := strings.Contains(string(h.ctx.Response.Body()), `"duplicate":true`); dup != tc.opts.dedupe {
				t.Errorf("answer %s: duplicate %v, want %v", h.ctx.Response.Body(), dup, tc.opts.dedupe)
			}
		})
	}
}

func TestEventIDAllocs(t *testing.T) {
	buf := make([]byte, 0, eventIDLen)
	if n := testing.AllocsPerRun(100, func() { buf = appendEventID(buf[:0], fasthttp.CoarseTimeNow()) }); n != 0 {
		t.Errorf("appendEventID allocates %v times", n)
	}
}

// TestRouteLookupAllocs: finding the routes of a path, exact or by
// prefix, allocates nothing.
func TestRouteLookupAllocs(t *testing.T) {
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", unusedURL)},
		Routes: []config.Route{
			syncRoute("exact", "/hooks/a", "t"),
			syncRoute("short", "/hooks/*", "t"),
			syncRoute("long", "/hooks/deep/*", "t"),
		},
	}
	tbl, err := buildTable(cfg, newDeps(t, cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hooks/a", "/hooks/deep/x", "/other"} {
		p := []byte(path)
		if n := testing.AllocsPerRun(100, func() { tbl.lookup(p) }); n != 0 {
			t.Errorf("lookup(%s) allocates %v times", path, n)
		}
	}
}
