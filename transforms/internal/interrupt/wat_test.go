package interrupt

import (
	"context"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/plugins/plugintest"
)

// watCases are the hand-written modules in testdata, with the wat2wasm
// flags they need and a few results of the original (so the tests know the
// modules do what they say; the differential test compares everything
// else).
var watCases = []struct {
	name  string
	file  string
	flags []string
	want  []string // lines the transcript of the original must contain
}{
	{"basic", "basic.wat", nil, []string{
		"fib: [5]", "fib20: [6765]", "sum_loop: [499500]", "started: [100]",
		"imports: [1085]", "trap: error wasm error: unreachable",
		"divzero: error wasm error: integer divide by zero",
	}},
	{"elements", "elements.wat", nil, []string{"table_ops: [14939]", "a_tables: [92839]"}},
	{"tailcall", "tailcall.wat", []string{"--enable-tail-call"}, []string{
		"count: [11]", "count_big: [1000000]", "ind_big: [300002]",
	}},
	{"simd", "simd.wat", nil, nil},
	{"atomics", "atomics.wat", []string{"--enable-threads"}, []string{"atomic_loop: [124750]"}},
	{"bulk", "bulk.wat", nil, []string{"init_after_drop: error wasm error: out of bounds memory access"}},
	{"multivalue", "multivalue.wat", nil, []string{
		"mv: [6 9 5]", "block_params: [1]", "loop_params: [15]", "loop_results: [10 100]",
		"if_type: [15]",
	}},
	{"names", "names.wat", []string{"--debug-names"}, []string{"third: [42]"}},
	{"extconst", "extconst.wat", []string{"--enable-extended-const"}, []string{"consts: [262]"}},
}

func TestWatModules(t *testing.T) {
	for _, tc := range watCases {
		t.Run(tc.name, func(t *testing.T) {
			orig := plugintest.Wat(t, "testdata/"+tc.file, tc.flags...)
			tr := run(t, orig, 0)
			all := strings.Join(tr.lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("the original's transcript lacks %q:\n%s", w, all)
				}
			}
			differential(t, orig, true)
		})
	}
}

// TestElementForms checks that elements.wat really has all eight element
// segment encodings, and that the instrumented module keeps them all with
// every function index shifted.
func TestElementForms(t *testing.T) {
	orig := plugintest.Wat(t, "testdata/elements.wat")
	inst, err := Instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	in, out := elementSummary(t, orig), elementSummary(t, inst)
	seen := map[uint32]bool{}
	for _, s := range in {
		seen[s.flags] = true
	}
	if len(seen) != 8 {
		t.Fatalf("elements.wat has element forms %v, want all of 0..7", seen)
	}
	if len(in) != len(out) {
		t.Fatalf("%d segments became %d", len(in), len(out))
	}
	const imported = 1 // elements.wat imports one function
	for i := range in {
		if in[i].flags != out[i].flags || len(in[i].funcs) != len(out[i].funcs) {
			t.Fatalf("segment %d: %+v became %+v", i, in[i], out[i])
		}
		for j, f := range in[i].funcs {
			want := f
			if f >= imported && f != nullRef {
				want = f + 1
			}
			if out[i].funcs[j] != want {
				t.Errorf("segment %d item %d: function %d became %d, want %d", i, j, f, out[i].funcs[j], want)
			}
		}
	}
}

const nullRef = ^uint32(0)

type elemSeg struct {
	flags uint32
	funcs []uint32 // function indices; nullRef for ref.null items
}

// elementSummary decodes the element section with the package's reader.
func elementSummary(t *testing.T, b []byte) []elemSeg {
	t.Helper()
	secs, err := splitSections(b)
	if err != nil {
		t.Fatal(err)
	}
	var segs []elemSeg
	for _, s := range secs {
		if s.id != secElement {
			continue
		}
		r := newReader(b, s.start, s.end)
		n := r.u32("")
		for i := uint32(0); i < n; i++ {
			seg := elemSeg{flags: r.u32("")}
			if seg.flags&3 == 2 {
				r.u32("")
			}
			if seg.flags&1 == 0 {
				(&module{b: b, definedGlobs: 100}).constExpr(r, nil)
			}
			if seg.flags&3 != 0 {
				r.byte("")
			}
			items := r.u32("")
			for j := uint32(0); j < items; j++ {
				if seg.flags&4 == 0 {
					seg.funcs = append(seg.funcs, r.u32(""))
					continue
				}
				switch op := r.byte(""); op {
				case 0xd2:
					seg.funcs = append(seg.funcs, r.u32(""))
				case 0xd0:
					r.byte("")
					seg.funcs = append(seg.funcs, nullRef)
				default:
					t.Fatalf("unexpected element expression opcode 0x%x", op)
				}
				if r.byte("") != 0x0b {
					t.Fatal("element expression does not end")
				}
			}
			segs = append(segs, seg)
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	return segs
}

// TestNames checks that function and local names follow the renumbering:
// through wazero's DebugName of the exports, and by decoding the output's
// name section.
func TestNames(t *testing.T) {
	orig := plugintest.Wat(t, "testdata/names.wat", "--debug-names")
	inst, err := Instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := newRuntime(ctx)
	defer rt.Close(ctx)
	co, err := rt.CompileModule(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := rt.CompileModule(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	for name, def := range co.ExportedFunctions() {
		got := ci.ExportedFunctions()[name].DebugName()
		if got != def.DebugName() || !strings.Contains(got, "$") && !strings.Contains(got, ".") {
			t.Errorf("export %s: debug name %q, want %q", name, got, def.DebugName())
		}
		t.Logf("export %s: %s", name, got)
	}
	for _, imp := range ci.ImportedFunctions() {
		t.Logf("import: %s", imp.DebugName())
	}

	in, out := nameMaps(t, orig), nameMaps(t, inst)
	want := map[uint32]string{0: "imported_log", 1: yieldDebugName, 2: "first", 3: "second", 4: "third"}
	for idx, name := range want {
		if out.funcs[idx] != name {
			t.Errorf("output function %d is named %q, want %q", idx, out.funcs[idx], name)
		}
	}
	if len(out.funcs) != len(in.funcs)+1 {
		t.Errorf("%d function names became %d", len(in.funcs), len(out.funcs))
	}
	if out.locals[2][1] != "tmp" || out.locals[3][0] != "y" {
		t.Errorf("local names did not follow: %v", out.locals)
	}
}

type names struct {
	funcs  map[uint32]string
	locals map[uint32]map[uint32]string // function -> local or label -> name
	labels map[uint32]map[uint32]string
}

func nameMaps(t *testing.T, b []byte) names {
	t.Helper()
	secs, err := splitSections(b)
	if err != nil {
		t.Fatal(err)
	}
	n := names{map[uint32]string{}, map[uint32]map[uint32]string{}, map[uint32]map[uint32]string{}}
	for _, s := range secs {
		if s.id != secCustom || string(s.name) != "name" {
			continue
		}
		r := newReader(b, s.bodyStart, s.end)
		for !r.done() {
			id := r.byte("")
			size := r.u32("")
			end := r.pos + int(size)
			if id < 1 || id > 3 {
				r.pos = end
				continue
			}
			count := r.u32("")
			for i := uint32(0); i < count; i++ {
				f := r.u32("")
				if id == 1 {
					n.funcs[f] = string(r.name(""))
					continue
				}
				m := map[uint32]string{}
				k := r.u32("")
				for j := uint32(0); j < k; j++ {
					idx := r.u32("")
					m[idx] = string(r.name(""))
				}
				if id == 2 {
					n.locals[f] = m
				} else {
					n.labels[f] = m
				}
			}
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	return n
}

func plugintestWat(t testing.TB, file string, flags []string) []byte {
	t.Helper()
	return plugintest.Wat(t, "testdata/"+file, flags...)
}
