package transforms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"golang.org/x/time/rate"
)

// TestPoolConcurrent: many goroutines share a pool of two instances; every
// event gets its own exact result and the pool never grows past its bound.
func TestPoolConcurrent(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "conf", Wasm: abitest.Guest(t), Instances: 2, Timeout: 5 * time.Second})
	c := chain(t, h, "r", []string{"crm"}, Step{Plugin: "conf", Config: []byte(`{"mode":"set"}`)}, Step{Plugin: "conf", Config: []byte(`{"mode":"kv"}`)})
	const goroutines, events = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	seen := make(chan string, goroutines*events)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out delivery.Outcome
			for i := range events {
				ev := testEvent()
				ev.Body = fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)
				out.Reset()
				if err := c.Run(context.Background(), ev, &out); err != nil {
					errs <- err
					return
				}
				// "set" rewrote this event's body; "kv" counted it.
				if string(ev.Body) != `{"new":true}` || len(out.Deliveries) != 1 {
					errs <- fmt.Errorf("goroutine %d event %d: body %q, %d deliveries", g, i, ev.Body, len(out.Deliveries))
					return
				}
				incr, _, _ := strings.Cut(string(out.Deliveries[0].Body), " ")
				seen <- incr
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(seen)
	for err := range errs {
		t.Fatal(err)
	}
	// kv_incr is atomic: every count from 1 to goroutines*events exactly once.
	counts := map[string]bool{}
	for s := range seen {
		if counts[s] {
			t.Fatalf("count %s seen twice", s)
		}
		counts[s] = true
	}
	for i := 1; i <= goroutines*events; i++ {
		if !counts[fmt.Sprintf("incr=%d", i)] {
			t.Fatalf("count %d missing", i)
		}
	}
	if n := h.plugins["conf"].seq.Load(); n > 2 {
		t.Fatalf("%d instances created; the bound is 2", n)
	}
	st := h.Stats()[0]
	if st.Calls != 2*goroutines*events || len(st.Failures) != 0 || st.Discarded != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPoolWaitHonoursContext: with every instance busy, Run waits only as
// long as its context allows.
func TestPoolWaitHonoursContext(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 1, Timeout: 10 * time.Second})
	p := h.plugins["tiny"]
	busy, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := chain(t, h, "r", nil, Step{Plugin: "tiny"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = c.Run(ctx, testEvent(), &delivery.Outcome{})
	want := `transforms: waiting for an instance of plugin "tiny": context deadline exceeded`
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
	p.put(busy)
	if err := c.Run(context.Background(), testEvent(), &delivery.Outcome{}); err != nil {
		t.Fatal(err)
	}
}

// TestPoolWaitBoundedByTimeout: with every instance stuck, a waiting call
// gives up after the plugin's timeout with KindBusy, even under a context
// that never ends; many waiters do not queue behind each other.
func TestPoolWaitBoundedByTimeout(t *testing.T) {
	// On one P too, where Runs are batched: a waiter blocked for an
	// instance must not hold up the jobs queued behind it.
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			setProcs(t, procs)
			h := newTestHost(t)
			const timeout = 200 * time.Millisecond
			load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 2, Timeout: timeout})
			p := h.plugins["tiny"]
			var held []*instance
			for range 2 {
				in, err := p.get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, in)
			}
			// Returned before the host closes even when the test fails
			// (Close waits for instances in use).
			release := sync.OnceFunc(func() {
				for _, in := range held {
					p.put(in)
				}
			})
			t.Cleanup(release)
			c := chain(t, h, "r", nil, Step{Plugin: "tiny"})
			const waiters = 20
			errs := make(chan error, waiters)
			start := time.Now()
			for range waiters {
				go func() { errs <- c.Run(context.Background(), testEvent(), &delivery.Outcome{}) }()
			}
			want := `plugin "tiny": all 2 instances stayed busy for 200ms: raise instances, or find what makes calls slow`
			for range waiters {
				if err := checkPluginError(<-errs, abi.KindBusy, want); err != nil {
					t.Fatal(err)
				}
			}
			// Each waited about one timeout, side by side; a queue would take
			// waiters × timeout (4 s). The bound is loose for a shared machine.
			if took := time.Since(start); took > waiters*timeout/2 {
				t.Fatalf("%d waiters took %v; want about %v", waiters, took, timeout)
			}
			if got := h.Stats()[0].Failures[abi.KindBusy]; got != waiters {
				t.Fatalf("busy failures = %d, want %d", got, waiters)
			}
			release()
			if err := c.Run(context.Background(), testEvent(), &delivery.Outcome{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadAgain(t *testing.T) {
	h := newTestHost(t)
	spec := PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 1}
	load(t, h, spec)
	first := h.plugins["tiny"]
	load(t, h, spec)
	if h.plugins["tiny"] != first {
		t.Fatal("loading the same bytes and limits again replaced the plugin")
	}
	spec.Timeout = time.Second
	load(t, h, spec)
	second := h.plugins["tiny"]
	if second == first || second.kv != first.kv {
		t.Fatalf("new limits: replaced %v, same store %v; want a new plugin sharing the store", second != first, second.kv == first.kv)
	}
	if err := h.CloseRetired(context.Background()); err != nil || !first.dead.Load() || second.dead.Load() {
		t.Fatalf("CloseRetired: %v; old closed %v, new closed %v", err, first.dead.Load(), second.dead.Load())
	}
	spec.StartTimeout = time.Minute
	load(t, h, spec)
	if third := h.plugins["tiny"]; third == second || third.initTimeout() != time.Minute {
		t.Fatalf("a new start_timeout: replaced %v, start bound %v; want a new plugin starting within 1m", third != second, third.initTimeout())
	}
}

func TestConfigIDsNeverReused(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 1})
	seen := map[uint32]bool{}
	for range 3 {
		c := chain(t, h, "r", nil, Step{Plugin: "tiny"}, Step{Plugin: "tiny", Config: []byte(`{"a":1}`)})
		for _, id := range c.ConfigIDs() {
			if id == 0 || seen[id] {
				t.Fatalf("config id %d reused or zero", id)
			}
			seen[id] = true
		}
	}
}

// TestCompilationCacheDir: the first host writes compiled code to the
// directory; a second one (a restart) loads from it.
func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	wasm := handleModule(i32const(0))
	for i := range 2 {
		h, err := NewHost(context.Background(), Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		load(t, h, PluginSpec{Name: "tiny", Wasm: wasm, Instances: 1})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) == 0 {
			t.Fatalf("host %d: cache directory is empty", i+1)
		}
	}
}

func TestClosedHost(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 1})
	c := chain(t, h, "r", nil, Step{Plugin: "tiny"})
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), testEvent(), &delivery.Outcome{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v; want ErrClosed", err)
	}
	if err := h.Load(context.Background(), PluginSpec{Name: "x", Wasm: handleModule(i32const(0))}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v; want ErrClosed", err)
	}
}

// TestLogRateLimit: past the burst, guest log lines are dropped and counted.
func TestLogRateLimit(t *testing.T) {
	c := newConfHost(t)
	p := c.h.plugins["conf"]
	p.limiter = rate.NewLimiter(0, 5) // no refill: exactly the burst gets through
	for range 10 {
		if err := c.run(t, "log"); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(logLines(t, c.logs, "guest")); got != 5 {
		t.Fatalf("%d lines logged, want 5", got)
	}
	if got := c.h.Stats()[0].LogDropped; got != 25 {
		t.Fatalf("%d lines counted as dropped, want 25", got)
	}
}

// TestDiscardStartsReplacement: an instance discarded after a failure
// (here a timeout) is replaced in the background, so the next event finds
// one ready instead of waiting for a start in front of its call; a Close
// right after a discard waits for the replacement and closes it.
func TestDiscardStartsReplacement(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "spin", Wasm: guestWasm(t, "hostile"), Instances: 1, Timeout: 50 * time.Millisecond})
	h.mu.Lock()
	p := h.plugins["spin"]
	h.mu.Unlock()
	for i := range 3 {
		if _, _, err := runBody(h, "spin", `{"mode":"spin"}`, featureBody); err == nil {
			t.Fatalf("call %d: a spinning guest returned", i)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(p.ready) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("call %d: no replacement instance within 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
		if n := p.stats.discarded.Load(); n != int64(i+1) {
			t.Fatalf("discarded %d instances after %d calls", n, i+1)
		}
	}
	// Discard once more and close at once: Close collects the token the
	// refill holds, so it returns only once the replacement is closed too.
	if _, _, err := runBody(h, "spin", `{"mode":"spin"}`, featureBody); err == nil {
		t.Fatal("a spinning guest returned")
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close took every token, ready instances and room alike; a refill
	// finishing after it would leave an instance in ready.
	time.Sleep(100 * time.Millisecond)
	if len(p.ready) != 0 || len(p.room) != 0 {
		t.Fatalf("after Close: %d ready, %d room; want every token taken by Close", len(p.ready), len(p.room))
	}
}

// After a plugin's one instance timed out, the next event waits for the
// replacement being started in the background, even when a start takes
// longer than the plugin's timeout, and runs on it: it does not fail as
// busy, which would say every instance was stuck in a call. (CI: a Go
// guest starting under the race detector took longer than 100 ms.)
func TestNextCallWaitsForTheReplacement(t *testing.T) {
	h := newTestHost(t)
	const timeout = 20 * time.Millisecond // a start takes at least 60 ms
	load(t, h, PluginSpec{Name: "slow", Wasm: watGuest(t, "slow_init"), Instances: 1, Timeout: timeout})
	p := h.plugins["slow"]
	for i := range 3 {
		if i > 0 {
			// The background start has taken the room for the
			// replacement (it takes 60 ms): the call below finds neither
			// an instance nor room for one, as in production when the
			// next event comes a moment after the timeout. (Should a
			// loaded machine hold this goroutine past the whole start,
			// the replacement is ready instead, and the call runs on it.)
			for deadline := time.Now().Add(5 * time.Second); p.starting.Load() == 0 && len(p.ready) == 0; time.Sleep(100 * time.Microsecond) {
				if time.Now().After(deadline) {
					t.Fatal("no replacement was started after the timeout")
				}
			}
		}
		start := time.Now()
		_, _, err := runBody(h, "slow", "", []byte(`{}`))
		took := time.Since(start)
		if err := checkPluginError(err, abi.KindTimeout, `plugin "slow": timed out after 20ms`); err != nil {
			t.Fatalf("call %d (after %v): %v", i+1, took, err)
		}
		t.Logf("call %d: %v after %v", i+1, err, took.Round(time.Millisecond))
	}
	if st := statsOf(h, "slow"); st.Failures[abi.KindBusy] != 0 {
		t.Errorf("stats %+v: a call failed as busy", st)
	}
}

// A plugin that loaded but whose next instance cannot start: the call
// that needed the instance fails as "failed" with the reason, and the
// failure counts in the plugin's figures and its observer, as every other
// failed call does (it once counted nowhere, so an operator saw a plugin
// answering 502s with no failures). The module's _initialize loops forever
// once the wall clock passes a deadline set just after its load.
func TestFailedStartIsCounted(t *testing.T) {
	rec := &recorder{}
	h := newHostWith(t, Options{Observer: rec})
	src, err := os.ReadFile("testdata/wat/init_loop_after.wat")
	if err != nil {
		t.Fatal(err)
	}
	// Past the load (wat2wasm, the compile, the first start) by a margin
	// for a loaded machine; the test waits for the deadline below.
	deadline := time.Now().Add(4 * time.Second)
	path := filepath.Join(t.TempDir(), "init_loop_after.wat")
	text := strings.Replace(string(src), "(i64.const DEADLINE)", "(i64.const "+strconv.FormatInt(deadline.UnixNano(), 10)+")", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	const timeout = 50 * time.Millisecond
	load(t, h, PluginSpec{Name: "late", Wasm: plugintest.Wat(t, path), Instances: 1, Timeout: timeout, StartTimeout: time.Second})
	if time.Now().After(deadline) {
		t.Fatal("loading took past the deadline: the loaded instance could not start")
	}
	time.Sleep(time.Until(deadline) + 10*time.Millisecond)

	// The loaded instance runs away and is discarded; its replacement,
	// started in the background, and then the one the next call starts
	// itself never finish _initialize.
	_, _, err = runBody(h, "late", "", []byte(`{}`))
	if err := checkPluginError(err, abi.KindTimeout, `plugin "late": timed out after 50ms`); err != nil {
		t.Fatal(err)
	}
	_, _, err = runBody(h, "late", "", []byte(`{}`))
	var perr *PluginError
	if !errors.As(err, &perr) || perr.Kind != abi.KindFailed || !strings.Contains(err.Error(), "starting an instance") {
		t.Fatalf("the call after: %v; want a failed start", err)
	}
	st := statsOf(h, "late")
	if st.Failures[abi.KindTimeout] != 1 || st.Failures[abi.KindFailed] != 1 || len(st.Failures) != 2 {
		t.Errorf("failures %v; want one timeout and one failed", st.Failures)
	}
	rec.mu.Lock()
	calls := strings.Join(rec.calls, " ")
	rec.mu.Unlock()
	if want := "late:" + abi.KindTimeout + " late:" + abi.KindFailed; calls != want {
		t.Errorf("observed %q; want %q", calls, want)
	}
}

// TestDefaultStartTimeout: without a StartTimeout a start gets ten calls'
// worth of time, and never less than MinStartTimeout; a given one is kept.
func TestDefaultStartTimeout(t *testing.T) {
	for _, tt := range []struct{ timeout, start, want time.Duration }{
		{0, 0, MinStartTimeout}, // DefaultTimeout, 100 ms: ten of them are under the floor
		{50 * time.Millisecond, 0, MinStartTimeout},
		{2 * time.Second, 0, 20 * time.Second},
		{2 * time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		spec, err := normalize(PluginSpec{Name: "x", Wasm: []byte{1}, Timeout: tt.timeout, StartTimeout: tt.start})
		if err != nil || spec.StartTimeout != tt.want {
			t.Errorf("timeout %v, start_timeout %v: got %v, %v; want %v", tt.timeout, tt.start, spec.StartTimeout, err, tt.want)
		}
	}
}
