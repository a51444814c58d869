package transforms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hookgate/hookgate/transforms/internal/interrupt"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// How a running call is stopped (see RATIONALE.md, "Stopping a call"):
// Load rewrites every module with interrupt.Instrument, which inserts a
// weighted countdown of a budget global at loop headers and function
// entries. When the budget runs out the guest calls hookgate_interrupt.yield,
// a Go function here, which compares the monotonic clock with the call's
// deadline (kept in the instance's callState) and either hands out a new
// budget or aborts the call by panicking with errDeadline; wazero unwinds
// the guest and returns the panic as the call's error. Nothing runs per call
// besides storing the deadline: no timer, goroutine or context.

// DefaultBudget is what yield hands out: about a millisecond of guest work
// between two looks at the clock. Measured in INTERRUPTS.md: 2^20 costs ~2%
// of a Go guest's time; 2^14 costs 1.8–3×.
const DefaultBudget = 1 << 20

// errDeadline is how yield aborts a call that ran past its deadline.
var errDeadline = errors.New("transforms: the call ran past its deadline")

// errTooDeep is how yield aborts a call nested deeper than
// interrupt.MaxDepth. Its text names a stack overflow, which is how the
// call is classified and logged: the same bug as wazero's own overflow,
// caught before wazero's stack grows to tens of megabytes.
var errTooDeep = fmt.Errorf("stack overflow: more than %d nested calls", interrupt.MaxDepth)

// epoch anchors monoNow: time.Since reads the monotonic clock only.
var epoch = time.Now()

// monoNow is monotonic nanoseconds since the process started.
func monoNow() int64 { return int64(time.Since(epoch)) }

// instantiateInterruptModule provides hookgate_interrupt.yield to one
// runtime. budget is what yield hands out.
func instantiateInterruptModule(ctx context.Context, rt wazero.Runtime, budget int32) error {
	_, err := rt.NewHostModuleBuilder(interrupt.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			if uint32(stack[0]) != 0 { // why (an i32: the upper half is undefined): the call depth passed interrupt.MaxDepth
				panic(errTooDeep)
			}
			st := stateOf(ctx)
			if monoNow() >= st.deadline {
				st.timedOut = true
				panic(errDeadline)
			}
			st.yields++
			stack[0] = api.EncodeI32(budget)
		}), []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
		Export(interrupt.ImportName).
		Instantiate(ctx)
	return err
}

// instrumented caches interrupt.Instrument's output by the input's hash:
// in memory, and on disk beside the compilation cache when there is one, so
// a reload or a restart does not rewrite a 2 MB module again (10–25 ms).
type instrumented struct {
	dir string // "" keeps the cache in memory only

	mu    sync.Mutex
	bytes map[[32]byte][]byte
}

func newInstrumented(cacheDir string) *instrumented {
	c := &instrumented{bytes: map[[32]byte][]byte{}}
	if cacheDir != "" {
		c.dir = filepath.Join(cacheDir, "instrumented")
	}
	return c
}

// get returns wasm (whose sha256 is sum) rewritten by interrupt.Instrument.
func (c *instrumented) get(wasm []byte, sum [32]byte) ([]byte, error) {
	c.mu.Lock()
	out, ok := c.bytes[sum]
	c.mu.Unlock()
	if ok {
		return out, nil
	}
	var file string
	if c.dir != "" {
		file = filepath.Join(c.dir, hex.EncodeToString(sum[:])+"-"+interrupt.Version+".wasm")
		if b, err := os.ReadFile(file); err == nil {
			out = checked(b)
		}
	}
	if out == nil {
		var err error
		if out, err = interrupt.Instrument(wasm); err != nil {
			return nil, err
		}
		if file != "" {
			c.store(file, out)
		}
	}
	c.mu.Lock()
	c.bytes[sum] = out
	c.mu.Unlock()
	return out, nil
}

// checked returns a cache file's module, or nil when the file is torn or
// altered: it ends with the sha256 of what precedes it.
func checked(b []byte) []byte {
	if len(b) < sha256.Size {
		return nil
	}
	n := len(b) - sha256.Size
	if sum := sha256.Sum256(b[:n]); string(sum[:]) != string(b[n:]) {
		return nil
	}
	return b[:n:n]
}

// store writes out to file (best effort: a cache that cannot be written
// only costs the next start some milliseconds). The checksum is appended
// to the file, never to out.
func (c *instrumented) store(file string, out []byte) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return
	}
	sum := sha256.Sum256(out)
	tmp := fmt.Sprintf("%s.tmp%d", file, os.Getpid())
	b := append(append(make([]byte, 0, len(out)+len(sum)), out...), sum[:]...)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
	}
}
