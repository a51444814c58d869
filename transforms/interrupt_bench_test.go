package transforms

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInterrupt is what the interrupt checks cost real guests: every
// stock plugin on its benchmark input, instrumented (production) and
// uninstrumented, side by side under -count so benchstat can pair them:
//
//	go test ./transforms -run XXX -bench BenchmarkInterrupt -count 6 | tee out
//	benchstat -col /mode out
//
// The goal is at most 1.3x on every plugin (RATIONALE.md).
func BenchmarkInterrupt(b *testing.B) {
	for _, c := range guestCases(b) {
		wasm := caseWasm(b, c)
		for _, m := range []struct {
			name string
			opts Options
		}{{"instrumented", Options{}}, {"uninstrumented", Options{noInterrupt: true}}} {
			b.Run(c.name+"/mode="+m.name, func(b *testing.B) {
				runGuest(b, optsChain(b, m.opts, c, wasm), c.body)
			})
		}
	}
}

// optsChain is guestChain with the host's options chosen by the caller.
func optsChain(tb testing.TB, opts Options, c guestCase, wasm []byte) *Chain {
	tb.Helper()
	opts.CacheDir = testCacheDir()
	h, err := NewHost(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(context.Background()) })
	load(tb, h, PluginSpec{Name: "p", Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
	return chain(tb, h, "test", c.targets, Step{Plugin: "p", Config: []byte(c.config)})
}

// BenchmarkGCStopWhileRunaway measures how long a garbage collection's
// stop-the-world waits for a guest that never returns on its own: the
// "stopping" pause is the time from the request to stop until every
// goroutine reached a safe point, and a goroutine running guest code gets
// there only when the guest calls yield. Reported as the worst stopping
// pause over b.N collections (ms); the goal is under 1 ms. Without
// instrumentation the collection would wait for the call to end.
//
// Two controls run first, with no guest at all: "control: idle" and
// "control: Go loop" (a goroutine spinning in plain Go, which the runtime
// preempts with a signal). On a shared VM a descheduled thread stalls a
// stop-the-world now and then whatever runs, so a runaway's worst pause is
// read against theirs, measured in the same run: what a guest adds is its
// distance above the controls.
func BenchmarkGCStopWhileRunaway(b *testing.B) {
	for _, spin := range []bool{false, true} {
		name := "control: idle"
		if spin {
			name = "control: Go loop"
		}
		b.Run(name, func(b *testing.B) {
			var stop atomic.Bool
			var spun atomic.Int64
			if spin {
				go func() {
					for !stop.Load() {
						spun.Add(1)
					}
				}()
				for spun.Load() == 0 {
					runtime.Gosched()
				}
			}
			before := stoppingPauses()
			for b.Loop() {
				runtime.GC()
			}
			after := stoppingPauses()
			stop.Store(true)
			reportPauses(b, before, after)
		})
	}
	for _, shape := range runawayShapes() {
		b.Run(shape.name, func(b *testing.B) {
			h := newTestHost(b)
			// Long enough for the default -benchtime of collections.
			load(b, h, PluginSpec{Name: "runaway", Wasm: shape.wasm(b), Instances: 1, Timeout: 5 * time.Second})
			done := make(chan error, 1)
			go func() {
				_, _, err := runBody(h, "runaway", shape.config, featureBody)
				done <- err
			}()
			waitBusyTB(b, h, "runaway")
			before := stoppingPauses()
			for b.Loop() {
				runtime.GC()
			}
			after := stoppingPauses()
			reportPauses(b, before, after)
			select {
			case err := <-done:
				b.Fatalf("the runaway ended before the collections did (%v): nothing was measured", err)
			default:
			}
			if err := <-done; err == nil {
				b.Fatal("the runaway returned without an error")
			}
		})
	}
}

// reportPauses reports the stopping pauses counted between two readings.
func reportPauses(b *testing.B, before, after *metrics.Float64Histogram) {
	b.ReportMetric(worstNewPause(before, after)*1e3, "worst-stop-ms")
	b.ReportMetric(newPauseQuantile(before, after, 0.5)*1e3, "median-stop-ms")
	b.ReportMetric(newPauseQuantile(before, after, 0.99)*1e3, "p99-stop-ms")
}

// waitBusyTB waits (bounded) until plugin has an instance in a call.
func waitBusyTB(tb testing.TB, h *Host, plugin string) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, st := range h.Stats() {
			if st.Name == plugin && st.Busy > 0 {
				time.Sleep(10 * time.Millisecond) // into the guest's loop
				return
			}
		}
	}
	tb.Fatalf("plugin %q never started its call", plugin)
}

const stoppingMetric = "/sched/pauses/stopping/gc:seconds"

func stoppingPauses() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: stoppingMetric}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram()
}

// worstNewPause is the upper bound of the highest bucket that gained
// counts between two readings of the same histogram.
func worstNewPause(before, after *metrics.Float64Histogram) float64 {
	for i := len(after.Counts) - 1; i >= 0; i-- {
		if after.Counts[i] > before.Counts[i] {
			return after.Buckets[i+1]
		}
	}
	return 0
}

// newPauseQuantile is the upper bound of the bucket holding quantile q of
// the pauses counted between two readings of the same histogram. The
// worst pause alone says more about the machine than about the guest on a
// shared one, where a descheduled thread stalls a stop-the-world now and
// then whatever runs.
func newPauseQuantile(before, after *metrics.Float64Histogram, q float64) float64 {
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i := range after.Counts {
		if seen += after.Counts[i] - before.Counts[i]; seen >= want {
			return after.Buckets[i+1]
		}
	}
	return 0
}
