package metrics

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

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
		tm.Attempt(delivery.AttemptSuccess, 200, d)
	}
}

// BenchmarkScrape is one GET /metrics worth of gathering with a realistic
// configuration (20 routes, 10 plugins, 20 targets): not the hot path,
// but it runs every few seconds.
func BenchmarkScrape(b *testing.B) {
	reg := New("dev")
	for i := range 20 {
		reg.Route(string(rune('a' + i))).Request()
		reg.Target(string(rune('a'+i))).Attempt(delivery.AttemptSuccess, 200, time.Millisecond)
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
