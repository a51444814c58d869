// Package interrupt rewrites a WebAssembly module so a running call can be
// stopped: wazero's own termination mode (WithCloseOnContextDone) is slow
// and does not stop loop-free call trees (see /work/shared/INTERRUPTS.md).
//
// Instrument adds to the module:
//   - a function type () -> i32 at the end of the type section and an import
//     of it, ImportModule.ImportName, after the existing imports. Its
//     function index is the number of imported functions, so every defined
//     function's index grows by one, and Instrument renumbers every
//     reference to one (calls, ref.func, exports, start, element segments,
//     constant expressions, the name section, where the import is named
//     "hookgate_interrupt.yield");
//   - a mutable i32 global, the budget counter, after the existing globals,
//     initialised to 0;
//   - a budget check at every loop header and at function entries:
//     counter -= w; if counter < 0 { counter = yield() }. The weight w bounds
//     the instructions the frame can run before its next check (weights.go),
//     so the budget yield hands out bounds the work done between two
//     yields, whatever shape the code has. An entry check is left out where
//     a loop header follows within a few straight-line instructions (most Go
//     functions) and in small leaves; calls pay for that.
//
// Everything else is copied: sections byte for byte, custom sections too,
// except DWARF (".debug_*"), which refers to code offsets and is dropped.
//
// The host's yield decides: past the call's deadline it aborts the call
// (for example by panicking in a Go host function, which wazero returns as
// the call's error); otherwise it returns the next budget, a number in
// [1, 1<<30] (0 makes every check yield; a negative budget could wrap the
// counter). The counter starts at 0, so an instance's first check yields at
// once. A start function runs inside instantiation: the deadline must cover
// it too.
//
// Instrument refuses, with an *Error naming the input offset:
//   - what it cannot decode completely: an unknown opcode is an error, never
//     a guess. The decoder knows what wazero v1.12 accepts (MVP, 2.0,
//     threads, tail calls, extended-const, exception handling with
//     try_table, typed function references), and reads it the way wazero
//     does where wazero departs from the spec;
//   - a module importing from ImportModule;
//   - indices the additions would make valid: a global index (in code,
//     constant expressions or exports) at or past the module's global count,
//     which would name the counter (a module could reset its own budget); a
//     function or type index past the module's. wazero validates only the
//     rewritten module, so these checks are Instrument's. With them the
//     output is valid for wazero exactly when the input is (fuzzed, and
//     checked on wazero's spec test corpus), short of wazero's limits of
//     2^27 functions, globals or stack values per function;
//   - modules claiming more than they hold (a vector count or string length
//     past the section's end) and functions declaring more than 50,000
//     locals: wazero v1.12 allocates what they claim before noticing, and a
//     module of a hundred bytes can stall it or exhaust the host's memory;
//   - a typed-reference table or global whose initialiser yields a funcref
//     without naming a function, in a module importing no function: wazero
//     v1.12 checks those against function 0, which the added import becomes.
//
// What a check cannot stop: a single long instruction (memory.copy or
// memory.fill of a large range, memory.atomic.wait), a blocking host
// function, and the tails of a deep chain of returns (each frame finishes
// the code after its last call without a further check, bounded by the
// depth times the frame's weight).
package interrupt

import "fmt"

const (
	ImportModule = "hookgate_interrupt" // the module of the one import Instrument adds
	ImportName   = "yield"              // () -> i32: called when the budget runs out; returns the new budget, or aborts the call (e.g. by panicking in a Go host function)
)

// Version changes whenever Instrument's output for the same input changes:
// the host keys its cache of instrumented modules on it.
const Version = "2"

// Instrument returns a copy of wasm with budget checks inserted (see package doc). It never modifies wasm.
func Instrument(wasm []byte) ([]byte, error) {
	out, _, err := instrument(wasm)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Error is a module Instrument refuses: Offset is the byte offset in the input where decoding or checking failed.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("interrupt: offset 0x%x: %s", e.Offset, e.Msg) }
