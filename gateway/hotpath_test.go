package gateway

import (
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/sink"
)

// hotPath is a gateway that is not listening, and a request context its
// handler can be driven with again and again, as fasthttp's server does.
type hotPath struct {
	g   *Gateway
	ctx fasthttp.RequestCtx
}

func newHotPath(tb testing.TB, targets int, jsonCheck bool) *hotPath {
	tb.Helper()
	payload, err := os.ReadFile("../testdata/howxm_entry_submitted.json")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &config.Config{Server: testServer()}
	route := syncRoute("howxm", "/hooks/howxm")
	route.JSON = jsonCheck
	for i := range targets {
		s := startSink(tb, sink.Options{Discard: true})
		name := string(rune('a' + i))
		cfg.Targets = append(cfg.Targets, targetAt(tb, name, s.URL()+"/crm"))
		route.Targets = append(route.Targets, name)
	}
	cfg.Routes = []config.Route{route}
	g, err := New(cfg, newDeps(tb, cfg))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.cancel() })
	h := &hotPath{g: g}
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/hooks/howxm")
	req.Header.SetContentType("application/json")
	req.Header.Set("User-Agent", "Howxm-Webhook/1.0")
	req.SetBody(payload)
	h.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return h
}

func (h *hotPath) serve(tb testing.TB) {
	h.ctx.Response.Reset()
	h.g.handle(&h.ctx)
	if st := h.ctx.Response.StatusCode(); st != 200 {
		tb.Fatalf("status %d: %s", st, h.ctx.Response.Body())
	}
}

// TestHotPathAllocs proves the sync passthrough (route, event, deliveries,
// forward over a pooled connection, answer) allocates nothing per request
// once warm. The count covers every goroutine: the target client and the
// sink included.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	tests := []struct {
		name    string
		targets int
		json    bool
	}{
		{name: "one target", targets: 1},
		{name: "one target, json check", targets: 1, json: true},
		{name: "fan-out to two targets", targets: 2},
		{name: "fan-out to three targets", targets: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPath(t, tc.targets, tc.json)
			for range 50 {
				h.serve(t)
			}
			if n := testing.AllocsPerRun(200, func() { h.serve(t) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
		})
	}
}

func TestEventIDAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	buf := make([]byte, 0, eventIDLen)
	if n := testing.AllocsPerRun(100, func() { buf = appendEventID(buf[:0], fasthttp.CoarseTimeNow()) }); n != 0 {
		t.Errorf("appendEventID allocates %v times", n)
	}
}

// BenchmarkSyncPassthrough drives the ingest handler (route, event,
// deliveries, forward to a real loopback sink, answer) as fasthttp's
// server would, without the inbound socket.
func BenchmarkSyncPassthrough(b *testing.B) {
	h := newHotPath(b, 1, true)
	h.serve(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.serve(b)
	}
}

// BenchmarkSyncPassthroughLoopback is the whole round trip: a fasthttp
// client posts the Howxm payload over loopback to the gateway, which
// forwards it to a loopback sink. Allocations include the client's.
func BenchmarkSyncPassthroughLoopback(b *testing.B) {
	payload, err := os.ReadFile("../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	s := startSink(b, sink.Options{Discard: true})
	route := syncRoute("howxm", "/hooks/howxm", "crm")
	route.JSON = true
	cfg := &config.Config{Server: testServer(), Targets: []config.Target{targetAt(b, "crm", s.URL()+"/crm")}, Routes: []config.Route{route}}
	cfg.Server.MaxConcurrency = 0
	_, base := startGateway(b, cfg, newDeps(b, cfg))
	c := &fasthttp.HostClient{Addr: base[len("http://"):], MaxConns: 64}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI(base + "/hooks/howxm")
		req.Header.SetContentType("application/json")
		for pb.Next() {
			req.SetBody(payload)
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d", resp.StatusCode())
				return
			}
		}
	})
}
