//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package transforms

import (
	"context"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
)

// TestRunAllocs: Run allocates nothing, instrumented (production) or not.
func TestRunAllocs(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		guest string
		want  float64 // at most this many
	}{
		{name: "host only", guest: "wat", want: 0},
		{name: "go guest", guest: "go", want: 0},
		// A budget of 1 makes every check call yield: the abort path's
		// bookkeeping must not allocate either.
		{name: "go guest, yield at every check", opts: Options{interruptBudget: 1}, guest: "go", want: 0},
		{name: "uninstrumented", opts: Options{noInterrupt: true}, guest: "go", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := trivialChain(t, tt.opts, tt.guest)
			ev := testEvent()
			var out delivery.Outcome
			ctx := context.Background()
			got := testing.AllocsPerRun(1000, func() {
				out.Reset()
				if err := c.Run(ctx, ev, &out); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%v allocs per Run", got)
			if got > tt.want {
				t.Fatalf("allocs per Run = %v, want at most %v", got, tt.want)
			}
		})
	}
}

// TestBatchedRunAllocs: Runs batched together (several callers on one P,
// one goroutine running the others' chains) allocate nothing either.
func TestBatchedRunAllocs(t *testing.T) {
	setProcs(t, 1)
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 1, Timeout: 10 * time.Second})
	c := chain(t, h, "r", []string{"crm"}, Step{Plugin: "conf", Config: []byte(`{"mode":"emit2"}`)})

	const callers = 7
	start := make(chan struct{})
	done := make(chan error, callers)
	defer close(start)
	for range callers {
		go func() {
			ev := testEvent()
			var out delivery.Outcome
			for range start {
				out.Reset()
				done <- c.Run(context.Background(), ev, &out)
			}
		}()
	}
	most := int32(0)
	got := testing.AllocsPerRun(300, func() {
		for range callers {
			start <- struct{}{}
		}
		for range callers {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		most = max(most, h.batch.last.Load())
	})
	t.Logf("%v allocs per %d Runs; the largest batch ran %d", got, callers, most)
	if most < 2 {
		t.Fatalf("the largest batch ran %d Runs: nothing was batched, so this measured nothing", most)
	}
	if got != 0 {
		t.Fatalf("allocs per %d batched Runs = %v, want 0", callers, got)
	}
}

// TestHostFunctionAllocs: the host functions allocate nothing per call in
// steady state either: reading metadata, rewriting the event, emitting,
// answering, every error path. (kv_set of a new key allocates the key and
// entry, and log allocates in slog; those modes are left out.)
func TestHostFunctionAllocs(t *testing.T) {
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 1, Timeout: 10 * time.Second})
	template := testEvent()
	for _, mode := range []string{"echo", "set", "errors", "respond"} {
		t.Run(mode, func(t *testing.T) {
			c := chain(t, h, "r", []string{"crm", "surveylab"}, Step{Plugin: "conf", Config: []byte(`{"mode":"` + mode + `"}`)})
			ev := testEvent()
			var out delivery.Outcome
			got := testing.AllocsPerRun(200, func() {
				// Restore what "set" changed, reusing the buffers.
				ev.Method = append(ev.Method[:0], template.Method...)
				ev.Path = append(ev.Path[:0], template.Path...)
				ev.Query = append(ev.Query[:0], template.Query...)
				ev.Body = append(ev.Body[:0], template.Body...)
				ev.Headers = delivery.Del(ev.Headers, []byte("X-Added"))
				ev.Headers = delivery.Set(ev.Headers, []byte("X-Seq"), []byte("7"))
				out.Reset()
				if err := c.Run(context.Background(), ev, &out); err != nil {
					t.Fatal(err)
				}
			})
			if got != 0 {
				t.Fatalf("allocs per Run = %v, want 0", got)
			}
		})
	}
}

// TestJSONGetAllocs: json_get allocates nothing per call once its working
// memory has grown, whether it answers, finds the buffer too small or
// refuses (the conformance guest's "json" mode does all of these).
func TestJSONGetAllocs(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 1, Timeout: 10 * time.Second})
	c := chain(t, h, "r", []string{"crm"}, Step{Plugin: "conf", Config: []byte(`{"mode":"json"}`)})
	ev := testEvent()
	var out delivery.Outcome
	got := testing.AllocsPerRun(200, func() {
		out.Reset()
		if err := c.Run(context.Background(), ev, &out); err != nil {
			t.Fatal(err)
		}
	})
	if got != 0 {
		t.Fatalf("allocs per Run = %v, want 0", got)
	}
}
