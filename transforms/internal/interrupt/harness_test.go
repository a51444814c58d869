package interrupt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// allFeatures is every feature wazero v1.12 has: the tests exercise the
// decoder on all of them.
const allFeatures = api.CoreFeaturesV2 |
	experimental.CoreFeaturesThreads |
	experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExtendedConst |
	experimental.CoreFeaturesExceptionHandling |
	experimental.CoreFeaturesTypedFunctionReferences

func newRuntime(ctx context.Context) wazero.Runtime {
	return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(allFeatures))
}

// errDeadline is what the test yield panics with past its deadline.
var errDeadline = errors.New("interrupt test: deadline exceeded")

// yielder is the test's hookgate_interrupt.yield.
type yielder struct {
	budget   int32
	yields   atomic.Int64
	tooDeep  atomic.Int64 // calls with whyDepth
	deadline atomic.Int64 // UnixNano; 0: none
}

// errTooDeep is what the test yield panics with when the guest's call
// depth passes MaxDepth.
var errTooDeep = errors.New("interrupt test: stack overflow: call depth past MaxDepth")

func (y *yielder) yield(_ context.Context, why int32) int32 {
	if why == whyDepth {
		y.tooDeep.Add(1)
		panic(errTooDeep)
	}
	y.yields.Add(1)
	if d := y.deadline.Load(); d != 0 && time.Now().UnixNano() > d {
		panic(errDeadline)
	}
	return y.budget
}

func instantiateYield(ctx context.Context, t testing.TB, rt wazero.Runtime, y *yielder) {
	t.Helper()
	_, err := rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(y.yield).Export(ImportName).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
}

var (
	genvOnce sync.Once
	genv     []byte
)

// env provides the imports the testdata modules use besides
// hookgate_interrupt: host functions (env) and globals (genv, a wasm module,
// since host modules cannot export globals).
type env struct {
	log []string
}

func (e *env) instantiate(ctx context.Context, t testing.TB, rt wazero.Runtime) {
	t.Helper()
	_, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithFunc(func(a, b int32) int32 { return a + b }).Export("add").
		NewFunctionBuilder().WithFunc(func(v int32) { e.log = append(e.log, fmt.Sprint(v)) }).Export("log").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	genvOnce.Do(func() { genv = plugintest.Wat(t, "testdata/genv.wat") })
	if _, err := rt.InstantiateWithConfig(ctx, genv, wazero.NewModuleConfig().WithName("genv")); err != nil {
		t.Fatal(err)
	}
}

// argsFor makes deterministic arguments for an exported function.
func argsFor(def api.FunctionDefinition) ([]uint64, bool) {
	var args []uint64
	for i, p := range def.ParamTypes() {
		switch p {
		case api.ValueTypeI32, api.ValueTypeI64:
			args = append(args, uint64(5+i))
		case api.ValueTypeF32:
			args = append(args, uint64(math.Float32bits(1.5+float32(i))))
		case api.ValueTypeF64:
			args = append(args, math.Float64bits(2.5+float64(i)))
		default:
			return nil, false
		}
	}
	return args, true
}

// firstLine keeps an error's first line: the rest is wazero's stack trace,
// whose function indices the rewrite shifts.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// transcript runs a module and records everything observable: the
// instantiation (the start function runs there), then for each exported
// function in name order its results or trap, the env.log calls, the
// exported memory's hash and the exported globals.
type transcript struct {
	lines  []string
	yields int64
}

// run instantiates bin in a fresh runtime (with a yield of the given budget
// when instrumented) and calls its exports.
func run(t testing.TB, bin []byte, budget int32) transcript {
	t.Helper()
	ctx := context.Background()
	rt := newRuntime(ctx)
	defer rt.Close(ctx)
	y := &yielder{budget: budget}
	instantiateYield(ctx, t, rt, y)
	e := &env{}
	e.instantiate(ctx, t, rt)
	var tr transcript
	add := func(format string, args ...any) { tr.lines = append(tr.lines, fmt.Sprintf(format, args...)) }
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("m"))
	if err != nil {
		add("instantiate: %s", firstLine(err))
		tr.yields = y.yields.Load()
		return tr
	}
	exports := cm.ExportedFunctions()
	names := make([]string, 0, len(exports))
	for n := range exports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args, ok := argsFor(exports[n])
		if !ok {
			add("%s: skipped (parameter types)", n)
			continue
		}
		res, err := mod.ExportedFunction(n).Call(ctx, args...)
		if err != nil {
			add("%s: error %s", n, firstLine(err))
		} else {
			add("%s: %v", n, res)
		}
		if len(e.log) > 0 {
			add("%s: log %v", n, e.log)
			e.log = nil
		}
		if mem := mod.ExportedMemory("memory"); mem != nil {
			b, _ := mem.Read(0, mem.Size())
			add("%s: memory %x", n, sha256.Sum256(b))
		}
	}
	for _, n := range exportNames(t, bin, 0x03) {
		add("global %s: %d", n, mod.ExportedGlobal(n).Get())
	}
	tr.yields = y.yields.Load()
	return tr
}

// exportNames lists a module's exports of one kind, in order
// (wazero's CompiledModule does not list globals).
func exportNames(t testing.TB, b []byte, kind byte) []string {
	t.Helper()
	secs, err := splitSections(b)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range secs {
		if s.id != secExport {
			continue
		}
		r := newReader(b, s.start, s.end)
		n := r.u32("")
		for i := uint32(0); i < n && r.err == nil; i++ {
			name := r.name("")
			if r.byte("") == kind {
				names = append(names, string(name))
			}
			r.u32("")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	return names
}

// budgets are the budgets every differential test runs with.
var budgets = []int32{1, 7, 1 << 10, 1 << 20}

// differential checks that the instrumented module behaves like the
// original under every budget, and returns the instrumented bytes. With
// expectYields, the instrumented runs must also yield when the rewrite
// inserted any check (so the module's tests must run one).
func differential(t *testing.T, orig []byte, expectYields bool) []byte {
	t.Helper()
	inst, st, err := instrument(orig)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	want := run(t, orig, 0)
	if want.yields != 0 {
		t.Fatalf("the original yielded %d times", want.yields)
	}
	for _, b := range budgets {
		got := run(t, inst, b)
		if d := diffLines(want.lines, got.lines); d != "" {
			t.Errorf("budget %d: instrumented behaves differently:\n%s", b, d)
		}
		if expectYields && got.yields == 0 && st.loopChecks+st.entryChecks > 0 {
			t.Errorf("budget %d: no yields (%d checks inserted)", b, st.loopChecks+st.entryChecks)
		}
		t.Logf("budget %d: %d yields", b, got.yields)
	}
	return inst
}

func diffLines(want, got []string) string {
	var sb strings.Builder
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&sb, "  want %q\n  got  %q\n", w, g)
		}
	}
	return sb.String()
}
