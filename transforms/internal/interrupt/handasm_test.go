package interrupt

import (
	"context"
	"strings"
	"testing"
)

// TestHandAssembled runs the differential test on the modules wat2wasm
// cannot write. wazero v1.12 runs exception handling (try_table, throw,
// throw_ref; the legacy try/catch is refused, see TestRefusals) and typed
// function references, so these are executed, not only decoded.
func TestHandAssembled(t *testing.T) {
	for _, tc := range []struct {
		name string
		bin  []byte
		want []string
	}{
		{"exceptions", ehModule(), []string{
			"throw_catch: [5]", "rethrow: [99]", "across_calls: [50]", "catch_ref: [42]",
			"uncaught: error wasm error: uncaught exception",
		}},
		{"funcrefs", funcRefModule(), []string{
			"callref: [46]", "tail_callref: [12]", "null_checks: [10]", "table_init: [42]",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := run(t, tc.bin, 0)
			all := strings.Join(tr.lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("the original's transcript lacks %q:\n%s", w, all)
				}
			}
			differential(t, tc.bin, true)
		})
	}
}

// TestLabelNames checks subsection 3 of the name section (label names):
// keyed by function index, and with label indices shifted past the ifs the
// checks add. wat2wasm does not write label names, so the section is made
// here.
func TestLabelNames(t *testing.T) {
	nameMap := func(entries ...[]byte) []byte { return vec(entries...) }
	assoc := func(idx uint32, name string) []byte { return cat(u(idx), str(name)) }
	sub := func(id byte, content []byte) []byte { return cat([]byte{id}, u(uint32(len(content))), content) }
	names := cat(str("name"),
		sub(1, nameMap(assoc(0, "imp"), assoc(1, "f"), assoc(2, "g"))),
		sub(3, nameMap(
			cat(u(1), nameMap(assoc(0, "fa"), assoc(1, "fb"), assoc(2, "fc"))),
			cat(u(2), nameMap(assoc(0, "ga"), assoc(1, "gb"), assoc(2, "gc"))))))
	bin := wasmModule(
		sec(secType, fn(nil, nil)),
		sec(secImport, cat(str("env"), str("imp"), []byte{0x00}, u(0))),
		sec(secFunction, u(0), u(0)),
		sec(secCode,
			// f: block(0) loop(1) end end block(2) end: the entry check is
			// left out (the loop comes first), the loop's check is label 2.
			code(noLocals, []byte{0x02, 0x40, 0x03, 0x40, 0x0b, 0x0b, 0x02, 0x40, 0x0b, 0x0b}),
			// g: i32.const 1, if(0) end, loop(1) end, block(2) end: an
			// entry check (label 0), then the loop's (label 3).
			code(noLocals, []byte{0x41, 0x01, 0x04, 0x40, 0x0b, 0x03, 0x40, 0x0b, 0x02, 0x40, 0x0b, 0x0b})),
		rawSec(secCustom, names))
	inst, st, err := instrument(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.entryChecks != 1 || st.loopChecks != 2 {
		t.Fatalf("stats %+v", *st)
	}
	got := nameMaps(t, inst)
	want := map[uint32]map[uint32]string{
		2: {0: "fa", 1: "fb", 3: "fc"},
		3: {1: "ga", 2: "gb", 4: "gc"},
	}
	for f, m := range want {
		for idx, name := range m {
			if got.labels[f][idx] != name {
				t.Errorf("function %d label %d: %q, want %q (all: %v)", f, idx, got.labels[f][idx], name, got.labels)
			}
		}
	}
	if got.funcs[0] != "imp" || got.funcs[1] != yieldDebugName || got.funcs[2] != "f" || got.funcs[3] != "g" {
		t.Errorf("function names %v", got.funcs)
	}
}

// TestTypeIndexRefusals: the added type would make the first type index
// past the input's end valid. A module using it is invalid, and must stay
// invalid, so Instrument refuses it wherever a type index can appear.
func TestTypeIndexRefusals(t *testing.T) {
	body := func(instrs ...byte) []byte {
		return wasmModule(sec(secType, fn(nil, nil)), sec(secFunction, u(0)),
			rawSec(secTable, cat(u(1), []byte{0x70, 0, 1})),
			sec(secCode, code(noLocals, append(instrs, 0x0b))))
	}
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"function declaration", wasmModule(sec(secType, fn(nil, nil)), sec(secFunction, u(1)), sec(secCode, code(noLocals, []byte{0x0b})))},
		{"import", wasmModule(sec(secType, fn(nil, nil)), sec(secImport, cat(str("env"), str("f"), []byte{0x00}, u(1))))},
		{"tag", wasmModule(sec(secType, fn(nil, nil)), sec(secTag, []byte{0x00, 0x01}))},
		{"block type", body(0x02, 0x01, 0x0b)},
		{"call_indirect", body(0x41, 0x00, 0x11, 0x01, 0x00)},
		{"call_ref", body(0xd0, 0x00, 0x14, 0x01)},
		{"ref.null", body(0xd0, 0x01, 0x1a)},
		{"typed select", body(0xd0, 0x70, 0xd0, 0x70, 0x41, 0x00, 0x1c, 0x01, 0x63, 0x01, 0x1a)},
		{"local", wasmModule(sec(secType, fn(nil, nil)), sec(secFunction, u(0)), sec(secCode, code(cat(u(1), u(1), []byte{0x63, 0x01}), []byte{0x0b})))},
		{"global", wasmModule(sec(secType, fn(nil, nil)), sec(secGlobal, []byte{0x63, 0x01, 0x00, 0xd0, 0x01, 0x0b}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Instrument(tc.bin)
			if err == nil || !strings.Contains(err.Error(), "type index 1 out of range (1 types)") {
				t.Errorf("got %v", err)
			}
			ctx := context.Background()
			rt := newRuntime(ctx)
			defer rt.Close(ctx)
			if _, err := rt.CompileModule(ctx, tc.bin); err == nil {
				t.Errorf("wazero accepts the module")
			}
		})
	}
}
