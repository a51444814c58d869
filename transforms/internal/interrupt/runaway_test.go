package interrupt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/tetratelabs/wazero"
)

// watText compiles generated wat text.
func watText(t testing.TB, text string, flags ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gen.wat")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return plugintest.Wat(t, path, flags...)
}

// callTree is a loop-free exponential call tree: f0 calls f1 twice, ...,
// down `levels` levels. There is no loop anywhere: only entry checks can
// stop it.
func callTree(levels int) string {
	var sb strings.Builder
	sb.WriteString("(module\n")
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&sb, "  (func $f%d (param i32) (result i32) (i32.add (call $f%d (local.get 0)) (call $f%d (i32.const 1))))\n", i, i+1, i+1)
	}
	fmt.Fprintf(&sb, "  (func $f%d (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))\n", levels)
	sb.WriteString("  (func (export \"run\") (result i32) (call $f0 (i32.const 0))))\n")
	return sb.String()
}

// straightLine is a loop-free, call-free function of about n instructions,
// called in an endless loop. With a weight of one per check, each call
// would do n units of work for one unit of budget.
func straightLine(n int) string {
	var sb strings.Builder
	sb.WriteString("(module\n  (func $big (param i32) (result i32)\n    (local.get 0)\n")
	for i := 0; i < n/4; i++ {
		fmt.Fprintf(&sb, "    i32.const %d\n    i32.mul\n    local.get 0\n    i32.xor\n", i|1)
	}
	sb.WriteString("  )\n")
	sb.WriteString("  (func (export \"run\") (result i32) (local $x i32)\n    (loop $l (local.set $x (call $big (local.get $x))) (br $l))\n    (local.get $x)))\n")
	return sb.String()
}

var runaways = []struct {
	name  string
	wat   func() string
	flags []string
}{
	{"loop br 0", func() string {
		return `(module (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))`
	}, nil},
	{"loop with params", func() string {
		return `(module (func (export "run") (result i32)
		  (i32.const 1) (loop $l (param i32) (result i32) (i32.add (i32.const 1)) (br $l))))`
	}, nil},
	{"exponential call tree", func() string { return callTree(40) }, nil},
	{"straight-line 20000 in a loop", func() string { return straightLine(20000) }, nil},
	{"deep recursion in a loop", func() string {
		return `(module
		  (func $rec (param i32) (result i32)
		    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
		      (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1)))))))
		  (func (export "run") (result i32) (local $x i32)
		    (loop $l (local.set $x (i32.add (local.get $x) (call $rec (i32.const 5000)))) (br $l))
		    (local.get $x)))`
	}, nil},
	{"endless tail recursion", func() string {
		return `(module
		  (func $f (param i32) (result i32) (return_call $f (i32.add (local.get 0) (i32.const 1))))
		  (func (export "run") (result i32) (call $f (i32.const 0))))`
	}, []string{"--enable-tail-call"}},
}

// TestRunawaysStop runs guests that never finish on their own and checks
// that a yield which panics past a deadline stops them soon after it. The
// bound is generous (the machine is shared): timing goals live in
// benchmarks; this is "it stops".
func TestRunawaysStop(t *testing.T) {
	const deadline = 100 * time.Millisecond
	const slack = 200 * time.Millisecond
	for _, tc := range runaways {
		t.Run(tc.name, func(t *testing.T) {
			orig := watText(t, tc.wat(), tc.flags...)
			inst, err := Instrument(orig)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rt := newRuntime(ctx)
			defer rt.Close(ctx)
			y := &yielder{budget: 1 << 20}
			instantiateYield(ctx, t, rt, y)
			mod, err := rt.InstantiateWithConfig(ctx, inst, wazero.NewModuleConfig().WithName("m"))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			y.deadline.Store(start.Add(deadline).UnixNano())
			_, err = mod.ExportedFunction("run").Call(ctx)
			elapsed := time.Since(start)
			if !errors.Is(err, errDeadline) {
				t.Fatalf("call ended with %v, want the deadline sentinel", err)
			}
			if elapsed > deadline+slack {
				t.Errorf("stopped after %v, want under %v", elapsed, deadline+slack)
			}
			t.Logf("stopped after %v (%d yields)", elapsed, y.yields.Load())
		})
	}
}
