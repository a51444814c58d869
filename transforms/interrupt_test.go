package transforms

// Tests of how a running call is stopped (interrupt.go): the modules the
// instrumenter rewrites must still behave exactly, whatever their producer
// and whatever features they use; a garbage collection must not wait for a
// runaway guest; a runaway in one instance must not hold up the others.
// The runaway guests themselves, one per shape, are in hostile_test.go.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// watGuest compiles testdata/wat/<name>.wat with wat2wasm.
func watGuest(t testing.TB, name string, flags ...string) []byte {
	t.Helper()
	return plugintest.Wat(t, "testdata/wat/"+name+".wat", flags...)
}

// asGuest compiles the AssemblyScript project transforms/testdata/guests/<dir>.
func asGuest(t testing.TB, dir string) []byte {
	t.Helper()
	return plugintest.AssemblyScript(t, "transforms/testdata/guests/"+dir)
}

// runBody runs one event with body through a one-step chain of plugin.
func runBody(h *Host, plugin, config string, body []byte) (*delivery.Event, *delivery.Outcome, error) {
	c, err := h.Chain("r", []Step{{Plugin: plugin, Config: []byte(config)}}, []string{"crm"})
	if err != nil {
		return nil, nil, err
	}
	ev := testEvent()
	ev.Body = append([]byte(nil), body...)
	out := &delivery.Outcome{}
	return ev, out, c.Run(context.Background(), ev, out)
}

// featureBody is the input of the feature guests: at least 16 bytes, so
// their SIMD loads read only the body.
var featureBody = []byte(`{"score":3,"comment":"fine"}`)

// TestFeatureGuests: well-behaved modules from each producer, using what
// the instrumenter must renumber or decode with care (element segments in
// both encodings, ref.func in constant expressions, tail calls, SIMD,
// atomics, bulk memory, multi-value blocks), give exactly the result the
// test computes on its own. Each runs at the default budget and at budget
// 1, where every check calls yield.
func TestFeatureGuests(t *testing.T) {
	n := len(featureBody)
	tests := []struct {
		name   string
		wasm   func(t testing.TB) []byte
		config string
		want   []byte
	}{
		{name: "Go: indirect calls, memory.copy and memory.fill",
			wasm: func(t testing.TB) []byte { return guestWasm(t, "hostile") }, config: `{"mode":"features"}`,
			want: goFeatures(featureBody)},
		{name: "AssemblyScript: SIMD, bulk memory, indirect calls",
			wasm: func(t testing.TB) []byte { return asGuest(t, "as-hostile") }, config: `{"mode":"features"}`,
			want: asFeatures(featureBody)},
		{name: "wat: element segments, ref.func constants, SIMD, bulk memory, multi-value",
			wasm: func(t testing.TB) []byte { return watGuest(t, "features") },
			want: watFeatures(featureBody)},
		{name: "wat: return_call and return_call_indirect",
			wasm: func(t testing.TB) []byte { return watGuest(t, "tailcall", "--enable-tail-call") },
			want: binary.LittleEndian.AppendUint64(nil, uint64(1_000_000+n)*uint64(1_000_000+n+1)/2)},
		{name: "wat: atomics",
			wasm: func(t testing.TB) []byte { return watGuest(t, "atomics", "--enable-threads") },
			want: binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(3*n)), uint32(n*1000))},
	}
	for _, budget := range []int32{0, 1} {
		h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir(), interruptBudget: budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(context.Background()) })
		for i, tt := range tests {
			t.Run(fmt.Sprintf("budget %d/%s", budget, tt.name), func(t *testing.T) {
				name := fmt.Sprintf("feat%d", i)
				load(t, h, PluginSpec{Name: name, Wasm: tt.wasm(t), Instances: 1, Timeout: 30 * time.Second})
				for range 2 { // the second call reuses the instance
					ev, out, err := runBody(h, name, tt.config, featureBody)
					if err != nil {
						t.Fatal(err)
					}
					if string(ev.Body) != string(tt.want) || out.Dropped || len(out.Deliveries) != 0 {
						t.Fatalf("body %q (dropped %v, %d deliveries)\nwant %q", ev.Body, out.Dropped, len(out.Deliveries), tt.want)
					}
				}
			})
		}
	}
}

// goFeatures is what the Go guest's "features" mode computes.
func goFeatures(b []byte) []byte {
	ops := []func(a, b uint32) uint32{
		func(a, b uint32) uint32 { return a + b },
		func(a, b uint32) uint32 { return a ^ (b << 1) },
		func(a, b uint32) uint32 { return a*31 + b },
	}
	big := make([]byte, 4096)
	for i := 0; i < len(big); i += len(b) {
		copy(big[i:], b)
	}
	sum := uint32(0)
	for i, c := range big {
		sum = ops[i%len(ops)](sum, uint32(c))
	}
	return []byte("features " + strconv.FormatUint(uint64(sum), 10))
}

// asFeatures is what the AssemblyScript guest's "features" mode computes.
func asFeatures(b []byte) []byte {
	n := len(b)
	out := make([]byte, 24)
	for i := range 16 {
		out[i] = b[i] + 1
	}
	out[16], out[17], out[18] = byte(n+7), byte(n*3), byte(n^0x55)
	for i := 19; i < 24; i++ {
		out[i] = 0x2a
	}
	copy(out[20:24], out[0:4])
	return out
}

// watFeatures is what testdata/wat/features.wat computes.
func watFeatures(b []byte) []byte {
	n := len(b)
	out := make([]byte, 32)
	for i := range 16 {
		out[i] = b[i] + 1
	}
	out[16], out[17] = byte(n/7), byte(n%7)
	out[18], out[19], out[20], out[21], out[22] = byte(n+100), byte(n*3), byte(n-1), byte(n^255), byte(n*5)
	copy(out[23:28], "bulk!")
	copy(out[28:32], out[0:4])
	return out
}

// runawayShapes are guests that never return, one per way a guest can
// keep the CPU: with and without loops, in Go, AssemblyScript and wat.
func runawayShapes() []struct {
	name   string
	wasm   func(t testing.TB) []byte
	config string
} {
	return []struct {
		name   string
		wasm   func(t testing.TB) []byte
		config string
	}{
		{"wat loop br 0", func(t testing.TB) []byte { return watGuest(t, "loop") }, ""},
		{"Go for {}", func(t testing.TB) []byte { return guestWasm(t, "hostile") }, `{"mode":"spin"}`},
		{"loop-free call tree", func(t testing.TB) []byte { return watGuest(t, "calltree") }, ""},
		{"20,000-instruction function in a loop", func(testing.TB) []byte { return bigFuncModule(20000) }, ""},
		{"AssemblyScript while (true)", func(t testing.TB) []byte { return asGuest(t, "as-hostile") }, `{"mode":"loop"}`},
	}
}

// TestGCWhileRunaway: a garbage collection's stop-the-world needs every
// goroutine at a safe point; a guest is at one only when it calls into Go,
// which the instrumented guest does at least every budget. So a collection
// started while a guest runs away finishes in milliseconds, not when the
// call's deadline ends it (here 2s away): both the whole runtime.GC() and
// the runtime's own measure of the wait to stop the world are checked.
func TestGCWhileRunaway(t *testing.T) {
	const timeout = 2 * time.Second
	h := newTestHost(t)
	for i, tt := range runawayShapes() {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("gc%d", i)
			load(t, h, PluginSpec{Name: name, Wasm: tt.wasm(t), Instances: 1, Timeout: timeout})
			// Collect what earlier tests left first, so the collection
			// measured below costs little besides waiting for the guest.
			runtime.GC()
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, _, err := runBody(h, name, tt.config, featureBody)
				done <- err
			}()
			waitBusy(t, h, name)
			time.Sleep(20 * time.Millisecond) // well inside the guest's work
			before := stoppingTimes(t)
			gcStart := time.Now()
			runtime.GC()
			gc := time.Since(gcStart)
			running := time.Since(start)
			stopping := maxNewSample(before, stoppingTimes(t))
			err := <-done
			if err := checkPluginError(err, abi.KindTimeout, fmt.Sprintf("plugin %q: timed out after 2s", name)); err != nil {
				t.Fatal(err)
			}
			t.Logf("runtime.GC() took %v (stopping the world: at most %v), started %v into the runaway call", gc, stopping, running-gc)
			if running >= timeout {
				t.Fatalf("the collection ended after the call's deadline (%v in): it did not overlap the runaway", running)
			}
			// A collection that waited for the guest would end at the
			// call's deadline, about 1.95 s after it started; a full
			// collection took 203ms under the race detector on a loaded
			// CI run, so the bound is half the deadline.
			if gc >= timeout/2 {
				t.Fatalf("runtime.GC() took %v while the guest ran away; want < %v", gc, timeout/2)
			}
			// The part of it that waited for the guest: a guest reaches a
			// safe point at least every budget (about a millisecond). The
			// bound leaves room for threads a busy machine does not run
			// at once; BenchmarkGCStopWhileRunaway measures the wait itself.
			if stopping == 0 || stopping >= 300*time.Millisecond {
				t.Fatalf("stopping the world took up to %v; want a sample, under 300ms", stopping)
			}
		})
	}
}

// stoppingTimes reads the runtime's histogram of how long stopping the
// world for a GC took: the wait for every goroutine, a guest's included,
// to reach a safe point.
func stoppingTimes(t *testing.T) *metrics.Float64Histogram {
	t.Helper()
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		t.Fatalf("runtime/metrics has no %s", s[0].Name)
	}
	return s[0].Value.Float64Histogram()
}

// maxNewSample returns the upper bound of the highest histogram bucket
// that gained samples between before and after (0 when none did).
func maxNewSample(before, after *metrics.Float64Histogram) time.Duration {
	for i := len(after.Counts) - 1; i >= 0; i-- {
		if after.Counts[i] > before.Counts[i] {
			up := after.Buckets[i+1]
			if math.IsInf(up, 1) {
				up = after.Buckets[i]
			}
			return time.Duration(up * float64(time.Second))
		}
	}
	return 0
}

// waitBusy waits (bounded) until plugin has an instance in a call.
func waitBusy(t *testing.T, h *Host, plugin string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, st := range h.Stats() {
			if st.Name == plugin && st.Busy > 0 {
				return
			}
		}
	}
	t.Fatalf("plugin %s never got busy", plugin)
}

// TestRunawayLeavesOthersAlone: while every instance but one of a plugin
// runs away, the remaining one keeps answering good events at once, and
// another plugin in the same host is unaffected.
func TestRunawayLeavesOthersAlone(t *testing.T) {
	h := newTestHost(t)
	spec := hostileSpec
	spec.Wasm = guestWasm(t, "hostile")
	spec.Instances = 3
	spec.Timeout = 2 * time.Second // long enough for the good events to run beside the runaways
	load(t, h, spec)
	load(t, h, PluginSpec{Name: "tree", Wasm: watGuest(t, "calltree"), Instances: 1, Timeout: 2 * time.Second})

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, run := range []func() error{
		func() error { _, err := runMode(h, "hostile", "spin"); return err },
		func() error { _, err := runMode(h, "hostile", "loop"); return err },
		func() error { _, _, err := runBody(h, "tree", "", nil); return err },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- run() }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		st := h.Stats()
		if st[0].Name == "hostile" && st[0].Busy == 2 && st[1].Busy == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runaways never all started: %+v", st)
		}
	}
	good := 0
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; good++ {
		t0 := time.Now()
		if err := checkOK(runMode(h, "hostile", "ok")); err != nil {
			t.Fatal(err)
		}
		// The first good event also starts the pool's third instance (a Go
		// runtime's start, slow under the race detector); the rest only run.
		// An event held up behind a runaway would wait for its timeout,
		// 2 s; a loaded machine may delay one by hundreds of ms.
		bound := time.Second
		if good == 0 {
			bound = 5 * time.Second
		}
		if d := time.Since(t0); d > bound {
			t.Fatalf("good event %d took %v beside the runaways; want < %v", good+1, d, bound)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var pe *PluginError
		if !errors.As(err, &pe) || pe.Kind != abi.KindTimeout {
			t.Errorf("runaway: %v; want a timeout", err)
		}
	}
	t.Logf("%d good events answered beside two runaway instances and a runaway plugin", good)
}
