package interrupt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// FuzzInstrument checks, for any input:
//   - Instrument never panics and never writes to its input; a refusal is
//     an *Error whose offset lies within the input;
//   - Instrument refuses every module that claims more than it holds (a
//     vector count or a string length past the section's end, more than
//     maxLocals locals): wazero v1.12 allocates what such a module claims
//     and stalls or dies, so those never reach wazero here;
//   - if wazero (every feature on) compiles the input, it compiles the
//     output too, and Instrument refuses only what it refuses on purpose
//     (see deliberateRefusal);
//   - if wazero rejects the input, it rejects the output too: the rewrite
//     never makes an invalid module valid (it refuses global, function and
//     type indices past the input's, which the added global, import and type
//     would otherwise make valid);
//   - for modules with exports taking no parameters, the output gives the
//     results the input gives whenever the input finishes within a short
//     deadline.
//
// The seeds are the testdata modules, the hand-assembled ones, generated
// programs and small spec test modules; the Go plugins are left out (megabytes each: the
// mutator and wazero's compiler would crawl), TestGoPlugins covers them.
func FuzzInstrument(f *testing.F) {
	for _, tc := range watCases {
		f.Add(plugintestWat(f, tc.file, tc.flags))
	}
	f.Add(ehModule())
	f.Add(funcRefModule())
	for seed := int64(0); seed < 8; seed++ {
		f.Add(genModule(rand.New(rand.NewSource(seed)), 3))
	}
	f.Add(watText(f, callTree(6)))
	f.Add(watText(f, runaways[0].wat()))
	// Small modules of wazero's spec tests for the proposals past 2.0 (the
	// spec corpus itself runs in TestSpecCorpus).
	for _, b := range specModules(f, []string{"exception-handling", "typed-function-references", "tail-call", "threads", "extended-const"}, 150, 2048) {
		f.Add(b)
	}
	f.Fuzz(fuzzOne)
}

// fuzzOne checks one input (see FuzzInstrument).
func fuzzOne(t *testing.T, wasm []byte) {
	in := bytes.Clone(wasm)
	out, err := Instrument(wasm)
	if !bytes.Equal(in, wasm) {
		t.Fatal("Instrument changed its input")
	}
	if err != nil {
		var ie *Error
		if !errors.As(err, &ie) || ie.Offset < 0 || ie.Offset > len(wasm) {
			t.Fatalf("bad refusal: %#v", err)
		}
	}
	if wazeroBomb(wasm) {
		// Not for wazero, which would allocate what the module claims
		// (see maxLocals and reader.oversize): Instrument must refuse it.
		if err == nil {
			t.Fatal("Instrument accepted a module that would exhaust wazero's memory")
		}
		return
	}
	ctx := context.Background()
	origErr, ok := compiles(ctx, wasm)
	if !ok {
		return // wazero itself panicked on the input: nothing to compare
	}
	if err != nil {
		if origErr == nil && !deliberateRefusal(err) {
			t.Fatalf("Instrument refused a module wazero accepts: %v", err)
		}
		return
	}
	instErr, ok := compiles(ctx, out)
	if !ok {
		t.Fatalf("wazero panicked compiling the output (input compiles: %v)", origErr)
	}
	switch {
	case origErr == nil && instErr != nil:
		t.Fatalf("the input compiles but the output does not: %v", instErr)
	case origErr != nil && instErr == nil:
		t.Fatalf("the output compiles but the input does not: %v", origErr)
	case origErr != nil:
		return
	}
	want, finished := runExports(ctx, t, wasm, false)
	if !finished {
		return
	}
	if got, _ := runExports(ctx, t, out, true); got != want {
		t.Fatalf("the output behaves differently:\n%s", diffLines(strings.Split(want, "\n"), strings.Split(got, "\n")))
	}
}

// deliberateRefusal reports the refusals of modules wazero v1.12 accepts
// that Instrument makes on purpose: an import from our own module (valid,
// but ours), a table import with an initialiser (not valid WebAssembly;
// wazero parses and ignores it), and a typed reference initialised to a
// funcref in a module importing no function (wazero's check of it depends
// on function 0, see typedInit).
func deliberateRefusal(err error) bool {
	for _, s := range []string{"already imports from", "shared memory", "table import with an initialiser", "funcref initialiser of a typed reference"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// wazeroBomb reports a module claiming more than it holds, in the way
// wazero v1.12 reads it: wazero decodes a section's content from the whole
// rest of the input (it checks the section's size only afterwards), so each
// section is decoded here with the package's decoders, one by one (a
// malformation in one must not hide a claim in another), up to the end of
// the input.
func wazeroBomb(b []byte) bool {
	if len(b) < 8 || !bytes.Equal(b[:8], magicVersion) {
		return false // wazero stops at the header
	}
	// Index ranges as wide as they go: wazero's decoder checks none, so
	// neither may this walk stop at one.
	m := &module{b: b, types: 1 << 31, importFuncs: 1 << 30, definedFuncs: 1 << 30, definedGlobs: 1 << 31}
	bomb := func(err error) bool { return err != nil && strings.Contains(err.Error(), "exceeds the") }
	r := newReader(b, 8, len(b))
	for !r.done() {
		id := r.byte("")
		size := r.u32("")
		if r.err != nil {
			return false
		}
		s := section{id: id, start: r.pos, end: len(b)}
		var err error
		switch id {
		case secCustom:
			cr := newReader(b, s.start, s.end)
			s.name = cr.name("")
			if cr.oversize {
				return true
			}
			s.bodyStart = cr.pos
			if string(s.name) == "name" {
				if _, oversize, _ := m.rewriteNames(s, &labelInfo{}); oversize {
					return true
				}
			}
		case secType:
			err = m.countTypes(s)
		case secImport:
			_, err = m.rewriteImports(&s)
		case secFunction, secTag:
			err = m.checkTypeUses(s)
		case secTable:
			_, err = m.rewriteTables(s)
		case secGlobal:
			_, err = m.rewriteGlobals(&s)
		case secExport:
			_, err = m.rewriteExports(s)
		case secElement:
			_, err = m.rewriteElements(s)
		case secData:
			err = m.checkData(s)
		case secCode:
			if manyLocals(b, s) {
				return true
			}
		}
		if bomb(err) {
			return true
		}
		if uint64(size) > uint64(len(b)-r.pos) {
			return false
		}
		r.pos += int(size)
	}
	return false
}

// manyLocals reports a code section with a vector count past its end or a
// function declaring more than maxLocals locals.
func manyLocals(b []byte, s section) bool {
	r := newReader(b, s.start, s.end)
	for n := r.vec("", 1); n > 0 && r.err == nil; n-- {
		size := r.u32("")
		end := r.pos + int(size)
		var sum uint64
		for d := r.vec("", 2); d > 0 && r.err == nil; d-- {
			sum += uint64(r.u32(""))
			r.byte("")
		}
		if sum > maxLocals {
			return true
		}
		if end > r.end || end < r.pos {
			break
		}
		r.pos = end
	}
	return r.oversize
}

// fuzzRuntime compiles: one runtime, compiled modules closed after use.
var fuzzRuntime = sync.OnceValue(func() wazero.Runtime { return newRuntime(context.Background()) })

// compiles reports wazero's verdict on b; ok is false if wazero panicked.
func compiles(ctx context.Context, b []byte) (err error, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	cm, err := fuzzRuntime().CompileModule(ctx, b)
	if err == nil {
		cm.Close(ctx)
	}
	return err, true
}

// runExports instantiates b and calls its exports that take no parameters,
// returning a transcript. The original runs in wazero's termination mode
// with a 20 ms deadline (finished is false when it ran out: loops that never
// end are common in fuzzed modules); the instrumented module runs with a
// yield that aborts after a second, which it must not reach.
func runExports(ctx context.Context, t testing.TB, b []byte, instrumented bool) (_ string, finished bool) {
	defer func() {
		// wazero v1.12's compiler panics on some modules when a function
		// listener is set (lower.go callListenerAfter, seen with tail
		// calls): the original cannot run then, so there is nothing to
		// compare.
		if !instrumented && recover() != nil {
			finished = false
		}
	}()
	cfg := wazero.NewRuntimeConfigCompiler().WithCoreFeatures(allFeatures).WithMemoryLimitPages(256)
	if !instrumented {
		cfg = cfg.WithCloseOnContextDone(true)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)
	y := &yielder{budget: 1 << 10}
	y.deadline.Store(time.Now().Add(time.Second).UnixNano())
	if _, err := rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(y.yield).Export(ImportName).
		Instantiate(ctx); err != nil {
		return "host: " + err.Error(), false
	}
	callCtx := ctx
	compileCtx := ctx
	if !instrumented {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		// Termination mode checks only at loop headers; a listener at every
		// function entry stops loop-free recursion and call trees.
		deadline := time.Now().Add(20 * time.Millisecond)
		compileCtx = experimental.WithFunctionListenerFactory(ctx, experimental.FunctionListenerFactoryFunc(
			func(api.FunctionDefinition) experimental.FunctionListener {
				return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
					if time.Now().After(deadline) {
						panic(errOrigDeadline)
					}
				})
			}))
	}
	var lines []string
	cm, err := rt.CompileModule(compileCtx, b)
	if err != nil {
		return "compile: " + err.Error(), false
	}
	mod, err := rt.InstantiateModule(callCtx, cm, wazero.NewModuleConfig().WithName("m"))
	if err != nil {
		if errors.Is(callCtx.Err(), context.DeadlineExceeded) || errors.Is(err, errOrigDeadline) {
			return "", false
		}
		if strings.Contains(err.Error(), "not instantiated") {
			// Which missing module wazero names depends on map order.
			return "instantiate: an imported module is missing", true
		}
		return "instantiate: " + firstLine(err), true
	}
	for _, name := range exportNames(t, b, 0x00) {
		def := cm.ExportedFunctions()[name]
		if def == nil || len(def.ParamTypes()) != 0 || !numeric(def.ResultTypes()) {
			continue
		}
		res, err := mod.ExportedFunction(name).Call(callCtx)
		if errors.Is(callCtx.Err(), context.DeadlineExceeded) || errors.Is(err, errOrigDeadline) {
			return "", false
		}
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: error %s", name, firstLine(err)))
			if mod.IsClosed() {
				break
			}
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %v", name, res))
	}
	return strings.Join(lines, "\n"), true
}

var errOrigDeadline = errors.New("fuzz: the original ran out of time")

func numeric(ts []api.ValueType) bool {
	for _, t := range ts {
		switch t {
		case api.ValueTypeI32, api.ValueTypeI64, api.ValueTypeF32, api.ValueTypeF64:
		default:
			return false
		}
	}
	return true
}

// TestRunExportsStopsOriginals checks the fuzz harness itself: an original
// that never ends, loop-free or not, is cut off rather than hanging.
func TestRunExportsStopsOriginals(t *testing.T) {
	for _, tc := range runaways {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			if _, finished := runExports(context.Background(), t, watText(t, tc.wat(), tc.flags...), false); finished {
				t.Error("finished")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
