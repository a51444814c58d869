package main

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/journal"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/hookgate/hookgate/transforms"
)

// observed says what a benchmark gateway is observed with, as serve
// wires it.
type observed struct {
	metrics bool // the Prometheus registry (plugin observer, and ingest once wired)
	journal bool // the recent-events journal
	logs    bool // a JSON logger at info (nothing is logged per success)
	access  bool // [log] access = true: one line per request
	// journalSize is the journal's ring (0: the default 10,000). Recording
	// allocates until each slot has been used once; a small ring lets a
	// test reach the steady state quickly.
	journalSize int
}

// opsPath is a sync route to a loopback sink, driven through the
// gateway's handler with one reused context, optionally with the
// howxm-nps plugin in its chain.
type opsPath = handlerPath

func newOpsPath(tb testing.TB, plugin bool, o observed) *opsPath {
	tb.Helper()
	payload, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := sink.Start("127.0.0.1:0", sink.Options{Discard: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	log := slog.New(slog.DiscardHandler)
	if o.logs {
		log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var reg *metrics.Registry
	if o.metrics {
		reg = metrics.New("bench")
	}
	var j *journal.Journal
	if o.journal {
		j = journal.New(o.journalSize)
	}
	u, _ := url.Parse(s.URL() + "/crm/tickets")
	cfg := &config.Config{
		Server:  config.Server{MaxBody: 1 << 20, ShutdownTimeout: 5 * time.Second, MaxConcurrency: 100},
		Log:     config.Log{Access: o.access},
		Targets: []config.Target{{Name: "crm", URL: u, Method: "POST", Timeout: 5 * time.Second, MaxConns: 8}},
		Routes: []config.Route{{Name: "howxm", Method: "POST", Path: "/hooks/howxm", Mode: config.ModeSync, JSON: true,
			MaxBody: 1 << 20, Targets: []string{"crm"}}},
	}
	set, err := target.NewSet(cfg.Targets)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(set.Close)
	deps := gateway.Deps{Targets: set, Logger: log}
	if plugin {
		wasm, err := os.ReadFile(plugintest.Build(tb, "plugins/howxm-nps"))
		if err != nil {
			tb.Fatal(err)
		}
		ctx := context.Background()
		opts := transforms.Options{Logger: log}
		if reg != nil {
			opts.Observer = reg
		}
		host, err := transforms.NewHost(ctx, opts)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { host.Close(context.Background()) })
		if err := host.Load(ctx, transforms.PluginSpec{Name: "howxm-nps", Wasm: wasm, Instances: 2}); err != nil {
			tb.Fatal(err)
		}
		cfg.Routes[0].Transforms = []config.Step{{Plugin: "howxm-nps", Config: []byte(`{"max_score":10,"target":"crm"}`)}}
		deps.Chains = chainBuilder{host: host}
	}
	wireIngest(&deps, o.access, reg, j)
	g, err := gateway.New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Shutdown(context.Background()) })
	return newHandlerPath(g.Handler(), payload)
}

var benchObserved = []struct {
	name string
	o    observed
}{
	{"metrics=off", observed{}},
	{"metrics=on", observed{metrics: true, journal: true, logs: true}},
	{"metrics=on,journal=off", observed{metrics: true, logs: true}},
	{"metrics=on,access=on", observed{metrics: true, journal: true, logs: true, access: true}},
}

// BenchmarkSyncPassthroughObserved is the sync passthrough path (ingest,
// one forward to a loopback sink) without and with what serve observes
// it with: metrics, the journal, the JSON log (and the access log).
func BenchmarkSyncPassthroughObserved(b *testing.B) { benchObservedPath(b, false, journal.DefaultSize) }

// BenchmarkSyncPluginObserved is the same with the howxm-nps plugin in
// the chain (plugin observer and chain journal on the path too). Its
// journal is smaller only so that warming it up takes a moment: a
// plugin call takes some 200µs.
func BenchmarkSyncPluginObserved(b *testing.B) { benchObservedPath(b, true, 512) }

func benchObservedPath(b *testing.B, plugin bool, journalSize int) {
	for _, bb := range benchObserved {
		b.Run(bb.name, func(b *testing.B) {
			o := bb.o
			o.journalSize = journalSize
			p := newOpsPath(b, plugin, o)
			// Go round the journal's ring once, so every slot has its
			// buffers: what is measured is the steady state.
			for range journalSize + 1 {
				p.serve(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p.serve(b)
			}
		})
	}
}
