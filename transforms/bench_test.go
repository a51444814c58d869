package transforms

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
)

// trivialHost loads the hand-assembled trivial guest (hookgate_handle
// returns 0, nothing else) and the Go one, and returns a chain for name.
func trivialChain(tb testing.TB, opts Options, name string) *Chain {
	tb.Helper()
	opts.CacheDir = testCacheDir()
	h, err := NewHost(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(context.Background()) })
	wasm := handleModule(i32const(0))
	if name == "go" {
		wasm = guestWasm(tb, "trivial")
	}
	load(tb, h, PluginSpec{Name: name, Wasm: wasm, Timeout: 10 * time.Second})
	return chain(tb, h, "r", []string{"crm"}, Step{Plugin: name})
}

// BenchmarkRun is the host's overhead per call: the guest does nothing.
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name  string
		opts  Options
		guest string
	}{
		{"wat", Options{}, "wat"},
		{"wat-uninstrumented", Options{noInterrupt: true}, "wat"},
		{"go", Options{}, "go"},
		{"go-uninstrumented", Options{noInterrupt: true}, "go"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := trivialChain(b, bc.opts, bc.guest)
			ev := testEvent()
			var out delivery.Outcome
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if err := c.Run(ctx, ev, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			c := trivialChain(b, bc.opts, bc.guest)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ev := testEvent()
				var out delivery.Outcome
				for pb.Next() {
					out.Reset()
					if err := c.Run(ctx, ev, &out); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkLoad compares loading a Go guest with an empty compilation
// cache (a first start) and with a warm on-disk cache (a restart).
func BenchmarkLoad(b *testing.B) {
	wasm := abitest.Guest(b)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			h, err := NewHost(context.Background(), Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			load(b, h, PluginSpec{Name: "c", Wasm: wasm, Instances: 1})
			h.Close(context.Background())
		}
	})
	b.Run("warm", func(b *testing.B) {
		dir := b.TempDir()
		h, _ := NewHost(context.Background(), Options{CacheDir: dir})
		load(b, h, PluginSpec{Name: "c", Wasm: wasm, Instances: 1})
		h.Close(context.Background())
		for b.Loop() {
			h, err := NewHost(context.Background(), Options{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			load(b, h, PluginSpec{Name: "c", Wasm: wasm, Instances: 1})
			h.Close(context.Background())
		}
	})
}

// BenchmarkInstance reports what an instance of a Go guest costs: the time
// to create one (per op), its linear memory after _initialize, and the Go
// heap it keeps alive in all (linear memory included: wazero keeps it in
// the Go heap), measured over 20 instances held at once.
func BenchmarkInstance(b *testing.B) {
	h := newTestHost(b)
	load(b, h, PluginSpec{Name: "c", Wasm: abitest.Guest(b), Instances: 1, Timeout: time.Second})
	p := h.plugins["c"]
	for b.Loop() {
		in, err := p.newInstance(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		in.close()
	}
	b.StopTimer()
	const n = 20
	held := make([]*instance, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		in, err := p.newInstance(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, in)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(held[0].mod.Memory().Size()), "linear-bytes/instance")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-bytes/instance")
	for _, in := range held {
		in.close()
	}
}

// BenchmarkGuestLoop measures what the interrupt checks cost guest code: a
// loop of 1000 iterations (hookgate_handle counts body_len down to zero),
// instrumented (production) and not. Under wazero's own termination mode,
// which hookgate no longer uses, every back-edge exited to Go (~29 ns per
// iteration against ~0.6 ns): see RATIONALE.md.
func BenchmarkGuestLoop(b *testing.B) {
	// loop; local.get 0; i32.const 1; i32.sub; local.tee 0; br_if 0; end
	countdown := cat([]byte{0x03, 0x40, 0x20, 0x00}, i32const(1), []byte{0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b}, i32const(0))
	for _, bc := range []struct {
		name string
		opts Options
	}{{"instrumented", Options{}}, {"uninstrumented", Options{noInterrupt: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := NewHost(context.Background(), bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			load(b, h, PluginSpec{Name: "loop", Wasm: handleModule(countdown), Instances: 1, Timeout: 10 * time.Second})
			c := chain(b, h, "r", nil, Step{Plugin: "loop"})
			ev := testEvent()
			ev.Body = make([]byte, 1000)
			var out delivery.Outcome
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if err := c.Run(context.Background(), ev, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
