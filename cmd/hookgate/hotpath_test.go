package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/hookgate/hookgate/transforms"
)

// pluginPath is a gateway whose sync route runs the howxm-nps plugin
// (max_score 10, so the seed payload becomes a ticket) before forwarding
// to a loopback sink, driven through its handler with one reused context.
type pluginPath = handlerPath

func newPluginPath(tb testing.TB) *pluginPath {
	tb.Helper()
	cfg, set, host, payload, _ := howxmRoute(tb, config.ModeSync)
	g, err := gateway.New(cfg, gateway.Deps{Targets: set, Chains: newChainBuilder(host), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Shutdown(context.Background()) })
	return newHandlerPath(g.Handler(), payload)
}

// howxmRoute is the config, targets and plugin host of one route running
// the howxm-nps plugin (max_score 10: the seed payload becomes a ticket,
// emitted to the loopback sink "crm") in mode, the seed payload, and the
// sink.
func howxmRoute(tb testing.TB, mode string) (*config.Config, *target.Set, *transforms.Host, []byte, *sink.Sink) {
	tb.Helper()
	wasm, err := os.ReadFile(plugintest.Build(tb, "plugins/howxm-nps"))
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := sink.Start("127.0.0.1:0", sink.Options{Discard: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })

	ctx := context.Background()
	host, err := transforms.NewHost(ctx, transforms.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { host.Close(context.Background()) })
	if err := host.Load(ctx, transforms.PluginSpec{Name: "howxm-nps", Wasm: wasm, Instances: 2}); err != nil {
		tb.Fatal(err)
	}
	u, _ := url.Parse(s.URL() + "/crm/tickets")
	cfg := &config.Config{
		Server:  config.Server{MaxBody: 1 << 20, ShutdownTimeout: 5 * time.Second, MaxConcurrency: 100},
		Targets: []config.Target{{Name: "crm", URL: u, Method: "POST", Timeout: 5 * time.Second, MaxConns: 8}},
		Routes: []config.Route{{Name: "howxm", Method: "POST", Path: "/hooks/howxm", Mode: mode, JSON: true,
			Targets:    []string{"crm"},
			Transforms: []config.Step{{Plugin: "howxm-nps", Config: []byte(`{"max_score":10,"target":"crm"}`)}}}},
	}
	set, err := target.NewSet(cfg.Targets)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(set.Close)
	return cfg, set, host, payload, s
}

// handlerPath drives a gateway's handler with one reused context that
// posts payload to /hooks/howxm, so a benchmark or an allocation count sees
// the handler's own cost and nothing of a client or a socket.
type handlerPath struct {
	h   fasthttp.RequestHandler
	ctx fasthttp.RequestCtx
}

func newHandlerPath(h fasthttp.RequestHandler, payload []byte) *handlerPath {
	p := &handlerPath{h: h}
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/hooks/howxm")
	req.Header.SetContentType("application/json")
	req.SetBody(payload)
	p.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return p
}

func (p *handlerPath) serve(tb testing.TB) {
	p.ctx.Response.Reset()
	p.h(&p.ctx)
	if st := p.ctx.Response.StatusCode(); st != 200 {
		tb.Fatalf("status %d: %s", st, p.ctx.Response.Body())
	}
}

// pluginCallAllocs is what one plugin call may allocate: nothing. The
// host keeps a call's state in the instance and stops runaways by
// instrumentation, with no per-call context, timer or goroutine
// (transforms/RATIONALE.md).
const pluginCallAllocs = 0

// BenchmarkSyncPluginPath is BenchmarkSyncPassthrough (package gateway)
// with the howxm-nps plugin in the route's chain.
func BenchmarkSyncPluginPath(b *testing.B) {
	p := newPluginPath(b)
	p.serve(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.serve(b)
	}
}
