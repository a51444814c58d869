package interrupt

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// goPlugin builds a Go plugin (cached on disk by plugintest) and reads it.
func goPlugin(tb testing.TB, dir string) []byte {
	tb.Helper()
	b, err := os.ReadFile(plugintest.Build(tb, dir))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// compilationCache is shared by the tests that compile Go plugins, so each
// binary is compiled once (a few seconds each).
var compilationCache = sync.OnceValue(wazero.NewCompilationCache)

// TestGoPlugins instruments real Go plugins: the counts must be sane, the
// output must compile, and _initialize plus a few hookgate_handle calls must
// make the same host calls with the same arguments, and return the same,
// as the original, under small and large budgets.
func TestGoPlugins(t *testing.T) {
	ticket, err := os.ReadFile("../../../plugins/howxm-nps/testdata/ticket_score3.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want string // a host call the original must make
	}{
		// The stub has no json_get, so filter stops at its config (still
		// the Go runtime's start-up, config parsing and an error path).
		{"plugins/filter", "fail"},
		{"plugins/howxm-nps", "body_read"},
	} {
		dir := tc.dir
		t.Run(dir, func(t *testing.T) {
			orig := goPlugin(t, dir)
			start := time.Now()
			inst, st, err := instrument(orig)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			growth := 100 * float64(len(inst)-len(orig)) / float64(len(orig))
			t.Logf("%d -> %d bytes (+%.2f%%) in %v; %d functions: %d loop checks, %d entry checks, entry checks left out: %d (loop soon) + %d (small leaf)",
				len(orig), len(inst), growth, elapsed, st.functions, st.loopChecks, st.entryChecks, st.elidedPrefix, st.elidedLeaf)
			if st.entryChecks+st.elidedPrefix+st.elidedLeaf != st.functions {
				t.Errorf("entry decisions %d+%d+%d do not add up to %d functions", st.entryChecks, st.elidedPrefix, st.elidedLeaf, st.functions)
			}
			// Go functions open with "global.get SP; local.set; block; loop":
			// most entry checks go, and every such function has a loop.
			if st.elidedPrefix < st.functions/2 || st.loopChecks < st.elidedPrefix {
				t.Errorf("implausible counts for a Go module: %+v", *st)
			}
			// About 1.2% for the budget checks, and about 9% for the depth
			// increments and decrements around Go's many calls.
			if growth > 13 {
				t.Errorf("grew %.2f%%, the design expects about 10%%", growth)
			}

			want := runGoPlugin(t, orig, 0, ticket)
			if !strings.Contains(strings.Join(want.lines, "\n"), tc.want) {
				t.Errorf("the original never called %s: %v", tc.want, want.lines)
			}
			for _, budget := range []int32{1 << 10, 1 << 20} {
				got := runGoPlugin(t, inst, budget, ticket)
				if d := diffLines(want.lines, got.lines); d != "" {
					t.Errorf("budget %d: the instrumented plugin behaves differently:\n%s", budget, d)
				}
				if got.yields == 0 {
					t.Errorf("budget %d: no yields", budget)
				}
				t.Logf("budget %d: %d host calls, %d yields", budget, len(got.lines), got.yields)
			}
		})
	}
}

// runGoPlugin runs _initialize and three hookgate_handle calls with WASI
// (deterministic clock and randomness) and a recording stub of hookgate_v1.
func runGoPlugin(t *testing.T, bin []byte, budget int32, body []byte) transcript {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(compilationCache()))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	y := &yielder{budget: budget}
	instantiateYield(ctx, t, rt, y)
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	record := func(format string, args ...any) { tr.lines = append(tr.lines, fmt.Sprintf(format, args...)) }
	host := rt.NewHostModuleBuilder("hookgate_v1")
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod != "hookgate_v1" {
			continue
		}
		results := def.ResultTypes()
		host.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			args := make([]uint64, len(def.ParamTypes()))
			for i, p := range def.ParamTypes() {
				args[i] = stack[i]
				if p == api.ValueTypeI32 { // the upper half is undefined
					args[i] = uint64(uint32(stack[i]))
				}
			}
			record("%s%v", name, args)
			if name == "set_body" || name == "emit" || name == "drop" || name == "fail" || name == "set_header" {
				// The bytes the guest hands over, not only their addresses.
				for i := 0; i+1 < len(args); i += 2 {
					if v, ok := m.Memory().Read(uint32(args[i+len(args)%2]), uint32(args[i+1+len(args)%2])); ok {
						record("  %q", v)
					}
					if i+2+len(args)%2 >= len(args) {
						break
					}
				}
			}
			var ret uint64
			write := func(v []byte, ptr, limit uint64) {
				if uint64(len(v)) <= uint64(uint32(limit)) {
					m.Memory().Write(uint32(ptr), v)
				}
				ret = uint64(len(v))
			}
			switch name {
			case "body_read":
				write(body, args[0], args[1])
			case "meta_read":
				ret = api.EncodeI32(-1)
				if args[0] == 5 { // CONFIG
					write([]byte("{}"), args[1], args[2])
				}
			case "header_get", "query_get":
				ret = api.EncodeI32(-1)
			case "emit":
				ret = 1
			}
			if len(results) > 0 {
				stack[0] = ret
			}
		}), def.ParamTypes(), results).Export(name)
	}
	if _, err := host.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	clock := int64(0)
	cfg := wazero.NewModuleConfig().WithName("plugin").WithStartFunctions("_initialize").
		WithRandSource(rand.New(rand.NewSource(1))).
		WithNanotime(func() int64 { clock += 1000; return clock }, 1).
		WithWalltime(func() (int64, int32) { return 1_700_000_000, 0 }, 1)
	mod, err := rt.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	for i := 0; i < 3; i++ {
		res, err := mod.ExportedFunction("hookgate_handle").Call(ctx, uint64(len(body)), 1)
		if err != nil {
			record("hookgate_handle: error %s", firstLine(err))
		} else {
			record("hookgate_handle: %v", res)
		}
		mem, _ := mod.Memory().Read(0, mod.Memory().Size())
		record("memory %x", sha256.Sum256(mem))
	}
	tr.yields = y.yields.Load()
	return tr
}

// BenchmarkInstrument instruments a built Go plugin. The prototype took
// 6-9 ms for a 1.85 MB Go module (howxm-nps is bigger now: see the log).
func BenchmarkInstrument(b *testing.B) {
	wasm := goPlugin(b, "plugins/howxm-nps")
	out, err := Instrument(wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Instrument(wasm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100*float64(len(out)-len(wasm))/float64(len(wasm)), "%growth")
	b.ReportMetric(float64(len(wasm))/1e6, "MB-in")
}
