package transforms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/delivery"
	"github.com/tetratelabs/wazero/api"
)

func TestLoadRefuses(t *testing.T) {
	fn := func(export string, params, results []byte, body []byte) wasmFunc {
		return wasmFunc{export: export, params: params, results: results, body: body}
	}
	handle := fn("hookgate_handle", handleSig.params, handleSig.results, i32const(0))
	tests := []struct {
		name    string
		wasm    []byte
		spec    PluginSpec
		wantErr string // exact, or a prefix when it ends in "..."
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
			wantErr: `plugin "x": does not compile: invalid magic number`},
		{name: "_initialize traps",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{handle, fn("_initialize", nil, nil, opUnreachable)}}.encode(),
			wantErr: `plugin "x": failed to start: module[x#1] function[_initialize] failed: wasm error: unreachable`},
		{name: "_initialize loops",
			wasm:    wasmModule{memory: true, funcs: []wasmFunc{handle, fn("_initialize", nil, nil, opLoopForever)}}.encode(),
			spec:    PluginSpec{Timeout: time.Millisecond},
			wantErr: `plugin "x": failed to start: _initialize did not finish within 1s`},
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
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("err = %q; want prefix %q", err, prefix)
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
	{name: "infinite loop", mode: "loop", kind: KindTimeout, wantErr: `plugin "hostile": timed out after 3s`},
	{name: "memory bomb", mode: "membomb", kind: KindMemory, wantErr: `plugin "hostile": ran out of memory (max_memory 8388608 bytes)...`},
	{name: "panic", mode: "panic", kind: KindTrap, wantErr: `plugin "hostile": trapped: panic: assignment to entry in nil map`},
	{name: "huge output", mode: "bigoutput", kind: KindOutput, wantErr: `plugin "hostile": produced more than max_output (1048576 bytes)`},
	{name: "pointer outside memory", mode: "badptr", kind: KindABI, wantErr: `plugin "hostile": body_read: pointer or length outside the plugin's memory`},
	{name: "exit", mode: "exit", kind: KindExit, wantErr: `plugin "hostile": exited with code 3`},
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
			_, err := runMode(h, "hostile", tt.mode)
			if err := checkPluginError(err, tt.kind, tt.wantErr); err != nil {
				t.Fatal(err)
			}
			created := p.seq.Load()
			if err := checkOK(runMode(h, "hostile", "ok")); err != nil {
				t.Fatalf("after %s: %v", tt.mode, err)
			}
			if got := p.seq.Load(); got != created+1 {
				t.Fatalf("instances created: %d -> %d; the failed instance must be replaced by a new one", created, got)
			}
			// The fresh instance is reused: no further instance for the next event.
			if err := checkOK(runMode(h, "hostile", "ok")); err != nil || p.seq.Load() != created+1 {
				t.Fatalf("healthy instance not reused: %v, created %d", err, p.seq.Load())
			}
		})
	}
	// Each failure is counted by kind, and each failed instance discarded.
	st := h.Stats()[0]
	want := map[string]int64{KindTimeout: 1, KindMemory: 1, KindTrap: 1, KindOutput: 1, KindABI: 1, KindExit: 1}
	if fmt.Sprint(st.Failures) != fmt.Sprint(want) || st.Discarded != 6 || st.Created != 7 || st.Calls != 18 {
		t.Fatalf("stats %+v; want failures %v, 6 discarded, 7 created, 18 calls", st, want)
	}
}

// TestHostileWasm covers failures a Go guest cannot produce: a trap
// instruction and a loop without function calls.
func TestHostileWasm(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "trap", Wasm: handleModule(cat(opUnreachable, i32const(0))), Instances: 1, Timeout: 10 * time.Second})
	load(t, h, PluginSpec{Name: "spin", Wasm: handleModule(cat(opLoopForever, i32const(0))), Instances: 1, Timeout: 20 * time.Millisecond})
	tests := []struct{ plugin, kind, want string }{
		{"trap", KindTrap, `plugin "trap": trapped: wasm error: unreachable`},
		{"spin", KindTimeout, `plugin "spin": timed out after 20ms`},
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
			if got := h.plugins[tt.plugin].seq.Load(); got != 2 {
				t.Fatalf("instances created = %d, want 2", got)
			}
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
		{FuncBodyRead, []arg{a32(big), a32(100)}},
		{FuncMetaRead, []arg{a32(MetaMethod), a32(big), a32(100)}},
		{FuncHeaderGet, []arg{a32(big), a32(4), a32(0), a32(0)}},
		{FuncQueryGet, []arg{a32(big), a32(4), a32(0), a32(0)}},
		{FuncSetBody, []arg{a32(0), a32(big), a32(4)}},
		{FuncSetBody, []arg{a32(0), a32(0), a32(big)}}, // length past the end
		{FuncSetMethod, []arg{a32(0), a32(big), a32(4)}},
		{FuncSetPath, []arg{a32(0), a32(big), a32(4)}},
		{FuncSetHeader, []arg{a32(0), a32(0), a32(1), a32(big), a32(1)}},
		{FuncSetQuery, []arg{a32(0), a32(big), a32(1), a32(0), a32(1)}},
		{FuncEmit, []arg{a32(big), a32(3)}},
		{FuncDrop, []arg{a32(big), a32(3)}},
		{FuncFail, []arg{a32(big), a32(3)}},
		{FuncLog, []arg{a32(1), a32(big), a32(3)}},
		{FuncKVGet, []arg{a32(big), a32(3), a32(0), a32(0)}},
		{FuncKVSet, []arg{a32(0), a32(1), a32(big), a32(3), a64(0)}},
		{FuncKVIncr, []arg{a32(big), a32(3), a64(1), a64(0)}},
		{FuncKVDelete, []arg{a32(big), a32(3)}},
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
			wasm := handleModule(body, wasmImport{module: HostModule, name: tt.fn, params: valueTypes(hf.params), results: valueTypes(hf.results)})
			name := fmt.Sprintf("bad%d", i)
			load(t, h, PluginSpec{Name: name, Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
			c := chain(t, h, "r", []string{"crm"}, Step{Plugin: name})
			for range 2 { // the second event runs on the replacement instance
				err := c.Run(context.Background(), testEvent(), &delivery.Outcome{})
				want := fmt.Sprintf("plugin %q: %s: pointer or length outside the plugin's memory", name, tt.fn)
				if err := checkPluginError(err, KindABI, want); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.plugins[name].seq.Load(); got != 2 {
				t.Fatalf("instances created = %d, want 2", got)
			}
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
