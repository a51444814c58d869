package transforms

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
)

// setProcs sets GOMAXPROCS for the rest of the test: with one P, Runs
// that are ready together are batched the way a loaded gateway on one
// core batches them.
func setProcs(t testing.TB, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// TestBatchRunsReadyChainsTogether: Runs started together on one P run
// back to back on one goroutine, and each caller still gets its own
// event's result or error, whichever of them ran it.
func TestBatchRunsReadyChainsTogether(t *testing.T) {
	setProcs(t, 1)
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 1, Timeout: 5 * time.Second})
	echo := chain(t, h, "echo", []string{"crm"}, Step{Plugin: "conf", Config: []byte(`{"mode":"echo"}`)})
	fail := chain(t, h, "fail", nil, Step{Plugin: "conf", Config: []byte(`{"mode":"fail"}`)})

	// 7 callers, so that if the batcher ever stopped yielding, the probe
	// (one Run in 16) lands on a different caller each round.
	const callers, rounds = 7, 20
	most := int32(0) // the largest batch seen
	for round := range rounds {
		start := make(chan struct{})
		errs := make(chan error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ev := testEvent()
				ev.Body = fmt.Appendf(nil, `{"round":%d,"caller":%d}`, round, i)
				var out delivery.Outcome
				if i%3 == 2 {
					err := fail.Run(context.Background(), ev, &out)
					if e := checkPluginError(err, abi.KindFailed, `plugin "conf": failed: config: missing score`); e != nil {
						errs <- fmt.Errorf("caller %d: %v", i, e)
					}
					return
				}
				if err := echo.Run(context.Background(), ev, &out); err != nil {
					errs <- fmt.Errorf("caller %d: %v", i, err)
					return
				}
				want := fmt.Sprintf("body=%s n=%d\n", ev.Body, len(ev.Body))
				if len(out.Deliveries) != 1 || !strings.HasPrefix(string(out.Deliveries[0].Body), want) {
					var got []byte
					if len(out.Deliveries) > 0 {
						got = out.Deliveries[0].Body
					}
					errs <- fmt.Errorf("caller %d got %d deliveries, the first %q; want its own body %q", i, len(out.Deliveries), got, want)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		most = max(most, h.batch.last.Load())
	}
	if most < callers/2 {
		t.Fatalf("the largest batch ran %d Runs; want at least %d of the %d started together", most, callers/2, callers)
	}
	if len(h.batch.queue) != 0 {
		t.Fatalf("%d jobs left in the queue", len(h.batch.queue))
	}
}

// TestBatchAloneDoesNotYield: a caller alone learns that nobody runs
// beside it, and then yields only on the probe calls, which find it still
// alone and so come further and further apart; Runs that arrive together
// again bring the probes back to minGap apart.
func TestBatchAloneDoesNotYield(t *testing.T) {
	setProcs(t, 1)
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 1})
	c := chain(t, h, "r", nil, Step{Plugin: "tiny"})
	run := func() {
		if err := c.Run(context.Background(), testEvent(), &delivery.Outcome{}); err != nil {
			t.Error(err)
		}
	}
	// The first loneLimit Runs yield (nothing learned yet); then probes
	// come minGap, 2*minGap and 4*minGap Runs apart, each alone.
	for range loneLimit + minGap + 2*minGap + 4*minGap {
		run()
	}
	b := &h.batch
	if got := b.last.Load(); got != 1 {
		t.Fatalf("last batch = %d; want 1 (alone)", got)
	}
	if got := b.lone.Load(); got != loneLimit {
		t.Fatalf("lone batches = %d, want %d", got, loneLimit)
	}
	// Three probes, each alone: the gap doubled three times, and the
	// last Run was a probe.
	if got, want := b.probeGap(), uint32(8*minGap); got != want || b.calls.Load() != 0 {
		t.Fatalf("probe gap = %d and %d Runs since the last probe; want %d and 0", got, b.calls.Load(), want)
	}
	// The gap stops growing at maxGap.
	for b.probeGap() < maxGap {
		for range b.probeGap() {
			run()
		}
	}
	for range 2 * maxGap {
		run()
	}
	if got := b.probeGap(); got != maxGap {
		t.Fatalf("probe gap = %d, want at most %d", got, maxGap)
	}

	// Runs that arrive together: the next probe finds them queued, and
	// the probes come minGap apart again. Only a batch with company
	// resets the gap (drain), so the loop's end is the check; b.last is
	// not, since a Run of the round that came after the batch may run
	// alone and record 1 after it.
	if b.gap.Load() == 0 {
		t.Fatal("the gap is reset before any Runs arrived together")
	}
	for round := 0; b.gap.Load() != 0; round++ {
		if round == maxGap { // a probe in every 7 rounds at most
			t.Fatalf("no batch found company in %d rounds of 7 Runs started together (last batch %d, gap %d)", round, b.last.Load(), b.probeGap())
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 7 {
			wg.Go(func() { <-start; run() })
		}
		close(start)
		wg.Wait()
	}
}

// panicky is an Observer whose "boom" plugin panics after every call: a
// stand-in for a bug in the host's own code during a chain.
type panicky struct{}

func (panicky) PluginObserver(plugin string) CallObserver {
	if plugin == "boom" {
		return boom{}
	}
	return nil
}

type boom struct{}

func (boom) Call(time.Duration, string) { panic("host bug") }

// TestBatchPanicReachesItsOwner: a panic while running another caller's
// chain is raised in that caller, not in the goroutine running the batch,
// and nobody waits forever for a job that panicked.
func TestBatchPanicReachesItsOwner(t *testing.T) {
	setProcs(t, 1)
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir(), Observer: panicky{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 1, Timeout: 5 * time.Second})
	load(t, h, PluginSpec{Name: "boom", Wasm: handleModule(i32const(0)), Instances: 1, Timeout: 5 * time.Second})
	echo := chain(t, h, "echo", []string{"crm"}, Step{Plugin: "conf", Config: []byte(`{"mode":"echo"}`)})
	bad := chain(t, h, "bad", nil, Step{Plugin: "boom"})

	const callers, rounds = 7, 10
	panics, most := 0, int32(0)
	for range rounds {
		start := make(chan struct{})
		type result struct {
			i        int
			err      error
			panicked any
		}
		results := make(chan result, callers)
		for i := range callers {
			go func() {
				r := result{i: i}
				defer func() {
					r.panicked = recover()
					results <- r
				}()
				<-start
				c := echo
				if i%3 == 1 {
					c = bad
				}
				r.err = c.Run(context.Background(), testEvent(), &delivery.Outcome{})
			}()
		}
		close(start)
		for range callers {
			select {
			case r := <-results:
				switch {
				case r.i%3 == 1 && r.panicked != "host bug":
					t.Fatalf("caller %d ran the panicking chain: recovered %v, err %v; want its own panic", r.i, r.panicked, r.err)
				case r.i%3 != 1 && (r.panicked != nil || r.err != nil):
					t.Fatalf("caller %d: panic %v, err %v; want neither", r.i, r.panicked, r.err)
				}
				if r.panicked != nil {
					panics++
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a caller never returned")
			}
		}
		most = max(most, h.batch.last.Load())
	}
	if want := rounds * (callers / 3); panics != want {
		t.Fatalf("%d panics, want %d", panics, want)
	}
	if most < 2 {
		t.Fatal("nothing was batched, so this tested nothing")
	}
}
