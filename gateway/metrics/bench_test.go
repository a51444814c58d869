package metrics

import (
	"errors"
	"testing"
	"time"
)

var errTransport = errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

// TestHotPathAllocs proves the per-request calls allocate nothing in
// steady state (AllocsPerRun makes one warm-up call first, which is when
// a target's (outcome, class) pair is resolved).
func TestHotPathAllocs(t *testing.T) {
	reg := New("dev")
	rm := reg.Route("howxm")
	pm := reg.Plugin("filter")
	var obs CallObserver = reg.PluginObserver("template")
	tm := reg.Target("crm")
	var nilRoute *RouteMetrics
	d := 1234 * time.Microsecond
	cases := []struct {
		name string
		f    func()
	}{
		{"route request+observe", func() { rm.Request(); rm.Observe(d) }},
		{"route reject", func() { rm.Reject(ReasonQueueFull) }},
		{"route reject out of range", func() { rm.Reject(Reason(99)) }},
		{"route duplicate+dropped", func() { rm.Duplicate(); rm.Dropped() }},
		{"plugin call ok", func() { pm.Call(d, "") }},
		{"plugin call error", func() { pm.Call(d, KindTimeout) }},
		{"plugin call unknown kind", func() { pm.Call(d, "nope") }},
		{"plugin call through the interface", func() { obs.Call(d, KindTrap) }},
		{"target attempt", func() { tm.Attempt(OutcomeRetry, 503, d) }},
		{"target attempt no answer", func() { tm.Attempt(OutcomeRetry, 0, d) }},
		{"target forwarded", func() { tm.Forwarded(200, nil, d) }},
		{"target forwarded failed", func() { tm.Forwarded(200, errTransport, d) }},
		{"nil handle", func() { nilRoute.Request(); nilRoute.Observe(d) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, c.f); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
}

// BenchmarkRouteRequest is what ingest pays per request for route
// metrics: one counter and one histogram observation.
func BenchmarkRouteRequest(b *testing.B) {
	rm := New("dev").Route("howxm")
	d := 1234 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		rm.Request()
		rm.Observe(d)
	}
}

func BenchmarkRouteRequestParallel(b *testing.B) {
	rm := New("dev").Route("howxm")
	d := 1234 * time.Microsecond
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rm.Request()
			rm.Observe(d)
		}
	})
}

func BenchmarkRouteRequestNil(b *testing.B) {
	var rm *RouteMetrics
	d := 1234 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		rm.Request()
		rm.Observe(d)
	}
}

func BenchmarkPluginCall(b *testing.B) {
	var obs CallObserver = New("dev").PluginObserver("filter")
	d := 40 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		obs.Call(d, "")
	}
}

func BenchmarkTargetAttempt(b *testing.B) {
	tm := New("dev").Target("crm")
	d := 20 * time.Millisecond
	b.ReportAllocs()
	for b.Loop() {
		tm.Attempt(OutcomeSuccess, 200, d)
	}
}

// BenchmarkScrape is one GET /metrics worth of gathering with a realistic
// configuration (20 routes, 10 plugins, 20 targets): not the hot path,
// but it runs every few seconds.
func BenchmarkScrape(b *testing.B) {
	reg := New("dev")
	for i := range 20 {
		reg.Route(string(rune('a' + i))).Request()
		reg.Target(string(rune('a'+i))).Attempt(OutcomeSuccess, 200, time.Millisecond)
	}
	for i := range 10 {
		reg.Plugin(string(rune('a'+i))).Call(time.Microsecond, "")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gatherer().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// The WASM host declares its own observer types without importing this
// package (see CallObserver); these are spelled as it would spell them,
// so a change here that breaks the host's wiring fails to compile here.
type (
	hostCallObserver = interface {
		Call(d time.Duration, kind string)
	}
	hostObserver interface {
		PluginObserver(plugin string) hostCallObserver
	}
)

var _ hostObserver = (*Registry)(nil)
