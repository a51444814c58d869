package transforms

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/tetratelabs/wazero/api"
)

func TestLoadRefuses(t *testing.T) {
	fn := func(export string, params, results []byte, body []byte) wasmFunc {
		return wasmFunc{export: export, params: params, results: results, body: body}
	}
	handle := fn("hookgate_handle", handleSig.params, handleSig.results, i32const(0))
	tests := []struct {
		name     string
		wasm     []byte
		spec     PluginSpec
		wantErr  string // exact, or a prefix when it ends in "..."
		contains string // and, with a prefix, a part of the rest
	}{
		{name: "missing hookgate_handle",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{fn("handle", handleSig.params, handleSig.results, i32const(0))}}.encode(),
			wantErr: `plugin "x": missing export "hookgate_handle"`},
		{name: "missing memory",
			wasm:    wasmModule{funcs: []wasmFunc{handle}}.encode(),
			wantErr: `plugin "x": missing export "memory"`},
		{name: "memory under another name",
			wasm:    wasmModule{memory: true, memName: "mem", funcs: []wasmFunc{handle}}.encode(),
			wantErr: `plugin "x": missing export "memory"`},
		{name: "hookgate_handle with the wrong signature",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{fn("hookgate_handle", []byte{tI32}, []byte{tI32}, i32const(0))}}.encode(),
			wantErr: `plugin "x": export "hookgate_handle" has signature (i32) -> (i32), want (i32, i32) -> i32`},
		{name: "_initialize with the wrong signature",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{handle, fn("_initialize", nil, []byte{tI32}, i32const(0))}}.encode(),
			wantErr: `plugin "x": export "_initialize" has signature () -> (i32), want () -> ()`},
		{name: "import env.foo",
			wasm:    handleModule(i32const(0), wasmImport{module: "env", name: "foo"}),
			wantErr: `plugin "x": imports "env.foo", which hookgate does not provide (only hookgate_v1 and wasi_snapshot_preview1)`},
		{name: "unknown hookgate_v1 function",
			wasm:    handleModule(i32const(0), wasmImport{module: "hookgate_v1", name: "open_socket", params: []byte{tI32}}),
			wantErr: `plugin "x": imports "hookgate_v1.open_socket", which hookgate does not provide (see plugins/ABI.md)`},
		{name: "hookgate_v1 import with the wrong signature",
			wasm:    handleModule(i32const(0), wasmImport{module: "hookgate_v1", name: "body_read", params: []byte{tI32}, results: []byte{tI32}}),
			wantErr: `plugin "x": imports "hookgate_v1.body_read" with signature (i32) -> (i32), but hookgate provides (i32, i32) -> (i32)`},
		{name: "kv_incr with i32 delta",
			wasm:    handleModule(i32const(0), wasmImport{module: "hookgate_v1", name: "kv_incr", params: []byte{tI32, tI32, tI32, tI64}, results: []byte{tI64}}),
			wantErr: `plugin "x": imports "hookgate_v1.kv_incr" with signature (i32, i32, i32, i64) -> (i64), but hookgate provides (i32, i32, i64, i64) -> (i64)`},
		{name: "not wasm",
			wasm:    []byte("#!/bin/sh\necho hi\n"),
			wantErr: `plugin "x": does not compile: not a WebAssembly binary (it does not start with \0asm); check the plugin's wasm path`},
		{name: "_initialize traps",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{handle, fn("_initialize", nil, nil, opUnreachable)}}.encode(),
			wantErr: `plugin "x": failed to start: module[x#1] function[_initialize] failed: wasm error: unreachable`},
		{name: "_initialize loops",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{handle, fn("_initialize", nil, nil, opLoopForever)}}.encode(),
			spec:    PluginSpec{Timeout: time.Millisecond, StartTimeout: 300 * time.Millisecond},
			wantErr: `plugin "x": failed to start: _initialize or the start function did not finish within 300ms`},
		// A guest must not touch the budget counter the instrumenter
		// appends (its index is the module's global count), nor call the
		// host's yield itself: either would let it renew its own budget.
		{name: "imports hookgate_interrupt.yield",
			wasm:    handleModule(cat(call(0), opDrop, i32const(0)), wasmImport{module: "hookgate_interrupt", name: "yield", results: []byte{tI32}}),
			wantErr: `plugin "x": cannot be made interruptible: interrupt: offset 0x...`, contains: "hookgate_interrupt"},
		{name: "global.get of the counter's index",
			wasm:    globalsModule(0, cat(globalGet(0), opDrop, i32const(0))),
			wantErr: `plugin "x": cannot be made interruptible: interrupt: offset 0x...`, contains: "global"},
		{name: "global.set of the counter's index",
			wasm:    globalsModule(1, cat(i32const(1<<30), globalSet(1), i32const(0))),
			wantErr: `plugin "x": cannot be made interruptible: interrupt: offset 0x...`, contains: "global"},
		{name: "global.get past the counter's index",
			wasm:    globalsModule(2, cat(globalGet(5), opDrop, i32const(0))),
			wantErr: `plugin "x": cannot be made interruptible: interrupt: offset 0x...`, contains: "global"},
		{name: "empty module",
			wasm:    nil,
			wantErr: `plugin "x": empty module`},
		{name: "max_memory below the floor",
			wasm:    handleModule(i32const(0)),
			spec:    PluginSpec{MaxMemory: 1 << 20},
			wantErr: `plugin "x": max_memory 1048576 is outside 4194304 (4MiB) .. 4GiB`},
	}
	h := newTestHost(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Name, spec.Wasm = "x", tt.wasm
			err := h.Load(context.Background(), spec)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T); want a *LoadError", err, err)
			}
			if prefix, ok := strings.CutSuffix(tt.wantErr, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(strings.TrimPrefix(err.Error(), prefix), tt.contains) {
					t.Fatalf("err = %q; want prefix %q followed by %q", err, prefix, tt.contains)
				}
			} else if err.Error() != tt.wantErr {
				t.Fatalf("err = %q\nwant  %q", err, tt.wantErr)
			}
			if _, err := h.Chain("r", []Step{{Plugin: "x"}}, nil); !errors.Is(err, ErrUnknownPlugin) {
				t.Fatalf("a refused plugin is usable: %v", err)
			}
		})
	}
}

// runMode runs one event through the hostile plugin named name in mode.
func runMode(h *Host, name, mode string) (*delivery.Outcome, error) {
	c, err := h.Chain("r", []Step{{Plugin: name, Config: []byte(`{"mode":"` + mode + `"}`)}}, []string{"crm"})
	if err != nil {
		return nil, err
	}
	ev := testEvent()
	out := &delivery.Outcome{}
	return out, c.Run(context.Background(), ev, out)
}

// checkOK asserts the outcome of a well-behaved "ok" event.
func checkOK(out *delivery.Outcome, err error) error {
	if err != nil {
		return err
	}
	if len(out.Deliveries) != 1 || string(out.Deliveries[0].Body) != `{"score":3}` || out.Deliveries[0].Target != "crm" {
		return fmt.Errorf("ok event: outcome %+v", out)
	}
	return nil
}

var hostileCases = []struct {
	name    string
	mode    string
	kind    string
	wantErr string // exact, or a prefix when it ends in "..."
}{
	{name: "infinite loop", mode: "loop", kind: abi.KindTimeout, wantErr: `plugin "hostile": timed out after 3s`},
	{name: "memory bomb", mode: "membomb", kind: abi.KindMemory, wantErr: `plugin "hostile": ran out of memory (max_memory 8388608 bytes)...`},
	{name: "panic", mode: "panic", kind: abi.KindTrap, wantErr: `plugin "hostile": trapped: panic: assignment to entry in nil map`},
	{name: "huge output", mode: "bigoutput", kind: abi.KindOutput, wantErr: `plugin "hostile": produced more than max_output (1048576 bytes)`},
	{name: "pointer outside memory", mode: "badptr", kind: abi.KindABI, wantErr: `plugin "hostile": body_read: pointer or length outside the plugin's memory`},
	{name: "exit", mode: "exit", kind: abi.KindExit, wantErr: `plugin "hostile": exited with code 3`},
}

func checkPluginError(err error, kind, want string) error {
	var pe *PluginError
	if !errors.As(err, &pe) || pe.Kind != kind {
		return fmt.Errorf("err = %v; want a %s *PluginError", err, kind)
	}
	if prefix, ok := strings.CutSuffix(want, "..."); ok {
		if !strings.HasPrefix(err.Error(), prefix) {
			return fmt.Errorf("err = %q; want prefix %q", err, prefix)
		}
	} else if err.Error() != want {
		return fmt.Errorf("err = %q; want %q", err, want)
	}
	return nil
}

// The timeout is generous because the memory bomb is slow under the race
// detector (it instruments wazero's copy of the growing memory) and good
// events must never time out on a loaded machine.
var hostileSpec = PluginSpec{Name: "hostile", Timeout: 3 * time.Second, MaxMemory: 8 << 20, MaxOutput: 1 << 20}

// TestHostileGuests: each misbehaviour fails its own event with a clear
// error, the instance is thrown away, and the next event gets a fresh one.
func TestHostileGuests(t *testing.T) {
	h := newTestHost(t)
	spec := hostileSpec
	spec.Wasm = guestWasm(t, "hostile")
	spec.Instances = 1
	load(t, h, spec)
	p := h.plugins["hostile"]
	for _, tt := range hostileCases {
		t.Run(tt.name, func(t *testing.T) {
			created := p.seq.Load()
			_, err := runMode(h, "hostile", tt.mode)
			if err := checkPluginError(err, tt.kind, tt.wantErr); err != nil {
				t.Fatal(err)
			}
			// The failed instance is replaced by a new one, in the
			// background, which the next events reuse.
			replaced(t, p, created+1)
			for range 2 {
				if err := checkOK(runMode(h, "hostile", "ok")); err != nil || p.seq.Load() != created+1 {
					t.Fatalf("after %s: %v; instances created %d -> %d, want one replacement reused", tt.mode, err, created, p.seq.Load())
				}
			}
		})
	}
	// Each failure is counted by kind, and each failed instance discarded.
	st := h.Stats()[0]
	want := map[string]int64{abi.KindTimeout: 1, abi.KindMemory: 1, abi.KindTrap: 1, abi.KindOutput: 1, abi.KindABI: 1, abi.KindExit: 1}
	if fmt.Sprint(st.Failures) != fmt.Sprint(want) || st.Discarded != 6 || st.Created != 7 || st.Calls != 18 {
		t.Fatalf("stats %+v; want failures %v, 6 discarded, 7 created, 18 calls", st, want)
	}
}

// replaced waits for the pool's background refill: p has created want
// instances in all, and one is ready.
func replaced(t testing.TB, p *plugin, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.seq.Load() != want || len(p.ready) == 0 {
		if p.seq.Load() > want || time.Now().After(deadline) {
			t.Fatalf("instances created = %d (%d ready), want %d with one ready", p.seq.Load(), len(p.ready), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHostileWasm covers failures a Go guest cannot produce: a trap
// instruction and a loop without function calls.
func TestHostileWasm(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "trap", Wasm: handleModule(cat(opUnreachable, i32const(0))), Instances: 1, Timeout: 10 * time.Second})
	load(t, h, PluginSpec{Name: "spin", Wasm: handleModule(cat(opLoopForever, i32const(0))), Instances: 1, Timeout: 20 * time.Millisecond})
	tests := []struct{ plugin, kind, want string }{
		{"trap", abi.KindTrap, `plugin "trap": trapped: wasm error: unreachable`},
		{"spin", abi.KindTimeout, `plugin "spin": timed out after 20ms`},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			c := chain(t, h, "r", nil, Step{Plugin: tt.plugin})
			for range 2 { // the second call runs on the replacement instance
				err := c.Run(context.Background(), testEvent(), &delivery.Outcome{})
				if err := checkPluginError(err, tt.kind, tt.want); err != nil {
					t.Fatal(err)
				}
			}
			replaced(t, h.plugins[tt.plugin], 3) // the first, and one per failure
		})
	}
}

// TestHostileConcurrent: good events keep succeeding, with exact output,
// while every kind of hostile event fails next to them in the same pool.
func TestHostileConcurrent(t *testing.T) {
	h := newTestHost(t)
	spec := hostileSpec
	spec.Wasm = guestWasm(t, "hostile")
	spec.Instances = 3
	spec.Timeout = 5 * time.Second // generous: good events must not time out on a loaded machine
	load(t, h, spec)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})
	good := 0
	var mu sync.Mutex
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := checkOK(runMode(h, "hostile", "ok")); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				good++
				mu.Unlock()
			}
		}()
	}
	for _, tt := range hostileCases {
		want := strings.Replace(tt.wantErr, "3s", "5s", 1)
		_, err := runMode(h, "hostile", tt.mode)
		if err := checkPluginError(err, tt.kind, want); err != nil {
			errs <- fmt.Errorf("%s: %v", tt.name, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if good == 0 {
		t.Fatal("no good event ran while the hostile ones failed")
	}
	t.Logf("%d good events succeeded alongside %d hostile ones", good, len(hostileCases))
}

// TestOutOfRangePointers: every host function that takes a pointer refuses
// one outside the guest's memory (one page here) without harming the host,
// and the call fails naming the function. Then the next event runs on a
// fresh instance.
func TestOutOfRangePointers(t *testing.T) {
	const big = 0x000F_FFF0 // past the single 64 KiB page
	type arg struct {
		i64 bool
		v   int64
	}
	a32 := func(v int64) arg { return arg{v: v} }
	a64 := func(v int64) arg { return arg{i64: true, v: v} }
	tests := []struct {
		fn   string
		args []arg
	}{
		{abi.FuncBodyRead, []arg{a32(big), a32(100)}},
		{abi.FuncMetaRead, []arg{a32(abi.MetaMethod), a32(big), a32(100)}},
		{abi.FuncHeaderGet, []arg{a32(big), a32(4), a32(0), a32(0)}},
		{abi.FuncQueryGet, []arg{a32(big), a32(4), a32(0), a32(0)}},
		{abi.FuncSetBody, []arg{a32(0), a32(big), a32(4)}},
		{abi.FuncSetBody, []arg{a32(0), a32(0), a32(big)}}, // length past the end
		{abi.FuncSetMethod, []arg{a32(0), a32(big), a32(4)}},
		{abi.FuncSetPath, []arg{a32(0), a32(big), a32(4)}},
		{abi.FuncSetHeader, []arg{a32(0), a32(0), a32(1), a32(big), a32(1)}},
		{abi.FuncSetQuery, []arg{a32(0), a32(big), a32(1), a32(0), a32(1)}},
		{abi.FuncEmit, []arg{a32(big), a32(3)}},
		{abi.FuncDrop, []arg{a32(big), a32(3)}},
		{abi.FuncFail, []arg{a32(big), a32(3)}},
		{abi.FuncLog, []arg{a32(1), a32(big), a32(3)}},
		{abi.FuncKVGet, []arg{a32(big), a32(3), a32(0), a32(0)}},
		{abi.FuncKVSet, []arg{a32(0), a32(1), a32(big), a32(3), a64(0)}},
		{abi.FuncKVIncr, []arg{a32(big), a32(3), a64(1), a64(0)}},
		{abi.FuncKVDelete, []arg{a32(big), a32(3)}},
	}
	h := newTestHost(t)
	for i, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			hf := findHostFunc(tt.fn)
			var body []byte
			for _, a := range tt.args {
				if a.i64 {
					body = append(body, i64const(a.v)...)
				} else {
					body = append(body, i32const(int32(a.v))...)
				}
			}
			body = append(body, call(0)...)
			if len(hf.results) > 0 {
				body = append(body, opDrop...)
			}
			body = append(body, i32const(0)...)
			wasm := handleModule(body, wasmImport{module: abi.HostModule, name: tt.fn, params: valueTypes(hf.params), results: valueTypes(hf.results)})
			name := fmt.Sprintf("bad%d", i)
			load(t, h, PluginSpec{Name: name, Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
			c := chain(t, h, "r", []string{"crm"}, Step{Plugin: name})
			for range 2 { // the second event runs on the replacement instance
				err := c.Run(context.Background(), testEvent(), &delivery.Outcome{})
				want := fmt.Sprintf("plugin %q: %s: pointer or length outside the plugin's memory", name, tt.fn)
				if err := checkPluginError(err, abi.KindABI, want); err != nil {
					t.Fatal(err)
				}
			}
			replaced(t, h.plugins[name], 3) // the first, and one per failure
		})
	}
}

// valueTypes converts wazero value types to the binary encoding.
func valueTypes(ts []api.ValueType) []byte {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return b
}

// globalGet and globalSet are the instructions on global idx.
func globalGet(idx uint32) []byte { return uleb([]byte{0x23}, idx) }
func globalSet(idx uint32) []byte { return uleb([]byte{0x24}, idx) }

// globalsModule is a module with n mutable i32 globals (initialised to 0),
// memory, and hookgate_handle with body. It is hand-assembled because its
// body may name a global the module lacks, which wat2wasm refuses: the
// instrumenter's own check must catch it, since wazero only ever sees the
// rewritten module, where that index is the budget counter.
func globalsModule(n int, body []byte) []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = section(out, 1, functype([]byte{1}, handleSig.params, handleSig.results))
	out = section(out, 3, []byte{1, 0})
	out = section(out, 5, []byte{1, 0x00, 1})
	g := uleb(nil, uint32(n))
	for range n {
		g = append(g, tI32, 0x01) // mutable i32
		g = append(g, i32const(0)...)
		g = append(g, 0x0b)
	}
	out = section(out, 6, g)
	ex := wstr([]byte{2}, "memory")
	ex = append(ex, 0x02, 0)
	ex = wstr(ex, abi.ExportHandle)
	ex = append(ex, 0x00, 0)
	out = section(out, 7, ex)
	code := append([]byte{0}, body...) // no locals
	code = append(code, 0x0b)
	sec := append([]byte{1}, uleb(nil, uint32(len(code)))...)
	return section(out, 10, append(sec, code...))
}

// bigFuncModule is a module whose hookgate_handle calls, in an endless
// loop, a loop-free function of about n instructions: the loop's own body
// is a handful of instructions, so only weighing the callee's entry check
// by its length keeps a runaway's overshoot small.
func bigFuncModule(n int) []byte {
	var big []byte
	for range n / 4 {
		big = append(big, 0x20, 0) // local.get 0
		big = append(big, i32const(1)...)
		big = append(big, 0x6a)    // i32.add
		big = append(big, 0x21, 0) // local.set 0
	}
	big = append(big, 0x20, 0)
	loop := cat([]byte{0x03, 0x40}, i32const(0), call(1), opDrop, []byte{0x0c, 0x00, 0x0b}) // loop (call $big 0) drop br 0 end
	return wasmModule{
		memory: true,
		funcs: []wasmFunc{
			{export: abi.ExportHandle, params: handleSig.params, results: handleSig.results, body: cat(loop, i32const(0))},
			{params: []byte{tI32}, results: []byte{tI32}, body: big},
		},
	}.encode()
}

// TestGlobalsKept: the refusal of the counter's index is exact; a module
// using its own globals loads and runs.
func TestGlobalsKept(t *testing.T) {
	h := newTestHost(t)
	// global.set 1 (global.get 0 + 5); return global.get 1 - 5, so 0.
	body := cat(globalGet(0), i32const(5), []byte{0x6a}, globalSet(1), globalGet(1), i32const(5), []byte{0x6b})
	load(t, h, PluginSpec{Name: "globals", Wasm: globalsModule(2, body), Instances: 1, Timeout: 10 * time.Second})
	if _, _, err := runBody(h, "globals", "", nil); err != nil {
		t.Fatal(err)
	}
}

// runawayMargin is how far past its timeout a runaway may be stopped in
// these tests. The design stops one within about a millisecond (see
// INTERRUPTS.md; BenchmarkRunawayOvershoot measures it, 0.2-0.5 ms); the
// margin is for a shared, loaded machine and the race detector, which
// can hold the guest's thread off a core for hundreds of milliseconds,
// not for the mechanism.
const runawayMargin = time.Second

// callTimes is an Observer keeping the duration of each plugin's last
// call: the guest's own run, without the wait for an instance or the
// start of a replacement one.
type callTimes struct {
	mu   sync.Mutex
	last map[string]time.Duration
}

func (c *callTimes) PluginObserver(plugin string) CallObserver { return callTime{c, plugin} }

func (c *callTimes) get(plugin string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[plugin]
}

type callTime struct {
	c      *callTimes
	plugin string
}

func (t callTime) Call(d time.Duration, kind string) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.last[t.plugin] = d
}

// TestRunaways: every shape of guest that never returns is stopped at its
// timeout with a timeout error, in Go, AssemblyScript and wat, with and
// without loops. Unbounded recursion is a trap naming a stack overflow,
// under the same short timeout and well before it: the instrumentation
// traps past interrupt.MaxDepth nested calls, before wazero's own stack
// has grown (without the limit, it grew to about 84 MB over 0.1-0.25 s
// and a 100ms call ended as a timeout). Each runs twice: the second call
// is on the replacement instance.
func TestRunaways(t *testing.T) {
	const short = 100 * time.Millisecond
	timedOut := func(name string) string { return fmt.Sprintf("plugin %q: timed out after 100ms", name) }
	overflow := func(name string) string {
		return fmt.Sprintf("plugin %q: trapped: stack overflow (unbounded recursion?)", name)
	}
	// The recursions must end as traps, by the depth limit, never at
	// their deadline: a deadline far away (only a failure timeout) keeps
	// a loaded machine, on which a Go guest's recursion has taken more
	// than 100ms to reach the limit, from making the test flake.
	const recursionTimeout = 10 * time.Second
	tests := []struct {
		name    string
		plugin  string
		wasm    func(t testing.TB) []byte
		config  string
		timeout time.Duration
		bound   time.Duration // the call must end before this
		// recursion: a trap, not a timeout, so it must come before the
		// deadline, and must not leave wazero's stack tens of MB large.
		recursion bool
		kind      string
		want      func(name string) string // exact, or a prefix when it ends in "..."
	}{
		{name: "wat loop br 0", plugin: "wat-loop",
			wasm: func(t testing.TB) []byte { return watGuest(t, "loop") }, kind: abi.KindTimeout, want: timedOut},
		{name: "Go for {}", plugin: "go-spin", config: `{"mode":"spin"}`,
			wasm: func(t testing.TB) []byte { return guestWasm(t, "hostile") }, kind: abi.KindTimeout, want: timedOut},
		{name: "Go loop with a counter", plugin: "go-loop", config: `{"mode":"loop"}`,
			wasm: func(t testing.TB) []byte { return guestWasm(t, "hostile") }, kind: abi.KindTimeout, want: timedOut},
		{name: "AssemblyScript while (true)", plugin: "as-loop", config: `{"mode":"loop"}`,
			wasm: func(t testing.TB) []byte { return asGuest(t, "as-hostile") }, kind: abi.KindTimeout, want: timedOut},
		{name: "loop-free exponential call tree, 40 levels", plugin: "calltree",
			wasm: func(t testing.TB) []byte { return watGuest(t, "calltree") }, kind: abi.KindTimeout, want: timedOut},
		{name: "loop-free 20,000-instruction function called in a loop", plugin: "bigfunc",
			wasm: func(testing.TB) []byte { return bigFuncModule(20000) }, kind: abi.KindTimeout, want: timedOut},
		{name: "endless return_call", plugin: "tailcall",
			wasm: func(t testing.TB) []byte { return watGuest(t, "tailcall_spin", "--enable-tail-call") }, kind: abi.KindTimeout, want: timedOut},
		{name: "wat unbounded recursion", plugin: "wat-recurse", recursion: true, timeout: recursionTimeout, bound: recursionTimeout,
			wasm: func(t testing.TB) []byte { return watGuest(t, "recurse") }, kind: abi.KindTrap, want: overflow},
		{name: "Go unbounded recursion", plugin: "go-recurse", config: `{"mode":"recurse"}`, recursion: true, timeout: recursionTimeout, bound: recursionTimeout,
			wasm: func(t testing.TB) []byte { return guestWasm(t, "hostile") }, kind: abi.KindTrap, want: overflow},
		{name: "AssemblyScript unbounded recursion", plugin: "as-recurse", config: `{"mode":"recurse"}`, recursion: true, timeout: recursionTimeout, bound: recursionTimeout,
			wasm: func(t testing.TB) []byte { return asGuest(t, "as-hostile") }, kind: abi.KindTrap, want: overflow},
	}
	times := &callTimes{last: map[string]time.Duration{}}
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir(), Observer: times})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.timeout == 0 {
				tt.timeout, tt.bound = short, short+runawayMargin
			}
			load(t, h, PluginSpec{Name: tt.plugin, Wasm: tt.wasm(t), Instances: 1, Timeout: tt.timeout, MaxMemory: 16 << 20})
			for i := range 2 {
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				_, _, err := runBody(h, tt.plugin, tt.config, featureBody)
				took := time.Since(start)
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				// What the call allocated on the Go heap: wazero's stack
				// (it doubles from 10 KB, copying, until 50 MB), a Go
				// guest's linear memory, the replacement instance. Without
				// the depth limit the wat and AssemblyScript recursions
				// allocated 85-170 MB; with it 1.4 MB, the Go one 10-16 MB
				// (its linear memory, up to max_memory).
				if alloc := after.TotalAlloc - before.TotalAlloc; tt.recursion && alloc >= recursionAllocBound {
					t.Fatalf("call %d: the recursion allocated %d MB on the Go heap; want < %d MB", i+1, alloc>>20, recursionAllocBound>>20)
				}
				if err := checkPluginError(err, tt.kind, tt.want(tt.plugin)); err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				call := times.get(tt.plugin)
				t.Logf("call %d: stopped after %v (%v with the pool): %v", i+1, call.Round(100*time.Microsecond), took.Round(100*time.Microsecond), err)
				if call >= tt.bound {
					t.Fatalf("call %d: stopped after %v; want < %v", i+1, call, tt.bound)
				}
				if tt.recursion && call >= tt.timeout {
					t.Fatalf("call %d: the recursion ran to its deadline (%v); the depth limit must trap it first", i+1, call)
				}
			}
			// Each failed instance is discarded and its replacement started
			// in the background: the one at Load and two replacements.
			deadline := time.Now().Add(10 * time.Second)
			for st := statsOf(h, tt.plugin); st.Created != 3 || st.Discarded != 2 || st.Idle != 1; st = statsOf(h, tt.plugin) {
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v; each failed instance must be discarded and replaced", st)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// recursionAllocBound bounds what one runaway recursion may allocate on the
// host's heap: max_memory (16 MiB here, which a Go guest's linear memory
// may fill) plus room for a replacement instance. wazero's stack alone
// reached 84 MB without the depth limit.
const recursionAllocBound = 16<<20 + 8<<20

func statsOf(h *Host, plugin string) PluginStats {
	for _, st := range h.Stats() {
		if st.Name == plugin {
			return st
		}
	}
	return PluginStats{}
}

// TestLoadRunaways: a guest that never finishes its _initialize (a Go
// init) or its start function (wat, AssemblyScript) fails Load with a
// timeout instead of hanging it. A Load also compiles (from the cache
// here) and instruments the module, which for a Go module takes a while
// by itself: the bound is the instantiation deadline, plus the margin,
// plus what a Load of a well-behaved module from the same producer takes.
func TestLoadRunaways(t *testing.T) {
	const want = `plugin "x": failed to start: _initialize or the start function did not finish within 1s`
	const initTimeout = time.Second // the plugins' StartTimeout
	goGuest := func(name string) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return guestWasm(t, name) }
	}
	tests := []struct {
		name       string
		wasm, good func(t testing.TB) []byte
	}{
		{"Go init never returns", goGuest("hostile/initloop"), goGuest("trivial")},
		{"wat _initialize loops", func(t testing.TB) []byte { return watGuest(t, "init_loop") }, func(t testing.TB) []byte { return watGuest(t, "loop") }},
		{"wat start function loops", func(t testing.TB) []byte { return watGuest(t, "start_loop") }, func(t testing.TB) []byte { return watGuest(t, "loop") }},
		{"AssemblyScript top-level loop", func(t testing.TB) []byte { return asGuest(t, "as-hostile/startloop") }, func(t testing.TB) []byte { return asGuest(t, "as-hostile") }},
	}
	// loadTime loads wasm in a new host and returns the error and how long
	// Load took. The first Load of a module fills the compilation cache,
	// so each is loaded twice and the second is timed.
	loadTime := func(t *testing.T, wasm []byte) (error, time.Duration) {
		var err error
		var took time.Duration
		for range 2 {
			h := newTestHost(t)
			start := time.Now()
			err = h.Load(context.Background(), PluginSpec{Name: "x", Wasm: wasm, Instances: 1, Timeout: 100 * time.Millisecond, StartTimeout: initTimeout})
			took = time.Since(start)
		}
		return err, took
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, base := loadTime(t, tt.good(t))
			if err != nil {
				t.Fatal(err)
			}
			err, took := loadTime(t, tt.wasm(t))
			var le *LoadError
			if !errors.As(err, &le) || err.Error() != want {
				t.Fatalf("err = %v (%T)\nwant %s", err, err, want)
			}
			t.Logf("Load failed after %v (a good module's Load: %v)", took.Round(time.Millisecond), base.Round(time.Millisecond))
			// The good module's Load is the time outside the init's
			// deadline (compiling from the cache, instantiating, the Go
			// runtime starting); twice it, as a loaded machine slows both.
			if bound := initTimeout + runawayMargin + 2*base; took >= bound {
				t.Fatalf("Load took %v; want < %v", took, bound)
			}
		})
	}
}

// TestSharedMemoryRefused: a wait on a shared memory blocks in wazero,
// out of reach of any budget check, so a module with a shared memory is
// refused at Load. Should it load all the same, the call must still end
// at its timeout rather than hang the test.
func TestSharedMemoryRefused(t *testing.T) {
	// Not newTestHost: its cleanup's Close would wait for a blocked call
	// forever. A host that loaded the module is left to the process.
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Load(context.Background(), PluginSpec{Name: "x", Wasm: watGuest(t, "atomic_wait", "--enable-threads"), Instances: 1, Timeout: 100 * time.Millisecond})
	var le *LoadError
	if errors.As(err, &le) && strings.HasPrefix(err.Error(), `plugin "x": `) && strings.Contains(err.Error(), "shared") {
		t.Logf("refused: %v", err)
		h.Close(context.Background())
		return
	}
	if err != nil {
		t.Fatalf("err = %v; want a *LoadError naming the shared memory", err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := runBody(h, "x", "", nil); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a module with a shared memory loaded (its wait ended with %v); want it refused at Load", err)
	case <-time.After(100*time.Millisecond + runawayMargin):
		t.Fatal("a module with a shared memory loaded, and its memory.atomic.wait32 outlives the call's timeout; refuse shared memories at Load")
	}
}
