package gateway

import (
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/internal/sink"
)

// hotPath is a gateway that is not listening, and a request context its
// handler can be driven with again and again, as fasthttp's server does.
type hotPath struct {
	g   *Gateway
	ctx fasthttp.RequestCtx
}

func newHotPath(tb testing.TB, targets int, jsonCheck bool) *hotPath {
	tb.Helper()
	return newHotPathWith(tb, hotOpts{targets: targets, json: jsonCheck})
}

// hotOpts adds the ingest guards to the hot path's route.
type hotOpts struct {
	targets int
	json    bool
	verify  bool // hmac over the body, the signature sent in X-Hookgate-Signature
	dedupe  bool // Idempotency-Key, the same on every request: all but the first are duplicates
	metrics bool // Prometheus counters and histogram per request
}

func newHotPathWith(tb testing.TB, o hotOpts) *hotPath {
	tb.Helper()
	targets, jsonCheck := o.targets, o.json
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
	if o.verify {
		route.Verify = &config.Verify{Type: "hmac", Secrets: secrets(hmacSecretOld, hmacSecretNew)}
	}
	if o.dedupe {
		route.Dedupe = &config.Dedupe{Header: "Idempotency-Key"}
	}
	cfg.Routes = []config.Route{route}
	g := newMeasured(tb, cfg, newDeps(tb, cfg), o.metrics)
	h := &hotPath{g: g}
	var req fasthttp.Request
	howxmRequest(&req, payload)
	if o.verify {
		req.Header.Set("X-Hookgate-Signature", hmacHex(hmacSecretNew, string(payload)))
	}
	if o.dedupe {
		req.Header.Set("Idempotency-Key", "entry-0001")
	}
	h.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return h
}

// howxmRequest makes req the Howxm seed event (body), as its sender posts
// it to /hooks/howxm.
func howxmRequest(req *fasthttp.Request, body []byte) {
	req.Header.SetMethod("POST")
	req.SetRequestURI("/hooks/howxm")
	req.Header.SetContentType("application/json")
	req.Header.Set("User-Agent", "Howxm-Webhook/1.0")
	req.SetBody(body)
}

func (h *hotPath) serve(tb testing.TB) {
	h.ctx.Response.Reset()
	h.g.handle(&h.ctx)
	if st := h.ctx.Response.StatusCode(); st != 200 {
		tb.Fatalf("status %d: %s", st, h.ctx.Response.Body())
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

// BenchmarkSyncPassthroughVerify is BenchmarkSyncPassthrough with an
// hmac check over the body (two active secrets).
func BenchmarkSyncPassthroughVerify(b *testing.B) {
	h := newHotPathWith(b, hotOpts{targets: 1, json: true, verify: true})
	h.serve(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.serve(b)
	}
}

// BenchmarkDuplicate is the answer to a verified repeat: verify, dedupe
// look-up, the first copy's answer; nothing is forwarded.
func BenchmarkDuplicate(b *testing.B) {
	h := newHotPathWith(b, hotOpts{targets: 1, json: true, verify: true, dedupe: true})
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

// newMeasured builds the gateway an allocation test drives, with the
// metrics recorder when withMetrics, stopped when the test ends.
func newMeasured(tb testing.TB, cfg *config.Config, deps Deps, withMetrics bool) *Gateway {
	tb.Helper()
	if withMetrics {
		deps.Recorder = record.Tee(record.Log(deps.Logger, false), metrics.New("test").Recorder())
	}
	g, err := New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.cancel() })
	return g
}
