// Package interrupt rewrites a WebAssembly module so a running call can be
// stopped: wazero's own termination mode (WithCloseOnContextDone) is slow
// and does not stop loop-free call trees (see /work/shared/INTERRUPTS.md).
//
// Instrument adds to the module:
//   - a function type (i32) -> i32 at the end of the type section and an
//     import of it, ImportModule.ImportName, after the existing imports. Its
//     function index is the number of imported functions, so every defined
//     function's index grows by one, and Instrument renumbers every
//     reference to one (calls, ref.func, exports, start, element segments,
//     constant expressions, the name section, where the import is named
//     "hookgate_interrupt.yield");
//   - two mutable i32 globals after the existing globals, both initialised
//     to 0: the budget counter, then the call depth;
//   - a budget check at every loop header and at function entries:
//     counter -= w; if counter < 0 { counter = yield() }. The weight w bounds
//     the instructions the frame can run before its next check (weights.go),
//     so the budget yield hands out bounds the work done between two
//     yields, whatever shape the code has. An entry check is left out where
//     a loop header follows within a few straight-line instructions (most Go
//     functions) and in small leaves; calls pay for that;
//   - the call depth (below).
//
// Call depth. wazero's stack for a guest starts at 10 KB and doubles,
// copying, until it passes 50 MB, when the call traps with a stack
// overflow: unbounded recursion took 0.1-0.25 s, 85-170 MB of host heap per
// instance, and with a 100 ms timeout ended as a timeout 10-75 ms late
// (the deadline passed during a doubling, which no check interrupts; the
// copy is also a single memmove a stop-the-world must wait for). So every
// counted call (call of a defined function, call_indirect, call_ref; not
// return_call*, which replaces the frame, nor a call of an import, a host
// function that never calls back) is wrapped in an increment and a
// decrement of the depth global, and every function making counted calls
// checks at entry that the depth is at most MaxDepth, else calls
// yield(whyDepth). Every recursion passes such an entry, so no guest nests
// more than MaxDepth+1 frames. Counting at call sites, not at function
// entries and exits, needs no exit to be found (return, br out of the
// body, br_table, tail calls) and keeps the count right across them. What
// leaves it wrong is a frame unwound without returning: a trap (the
// instance is then discarded by the host; a host reusing it finds the
// depth too high by the frames unwound) or an exception caught in an outer
// frame (exception handling, which hookgate does not enable). The depth
// bounds frames, not bytes: a function with huge frames (thousands of
// locals) can still reach wazero's own 50 MB ceiling first.
//
// Everything else is copied: sections byte for byte, custom sections too,
// except DWARF (".debug_*"), which refers to code offsets and is dropped.
//
// The host's yield(why) decides. With why 0 (whyBudget) the budget ran out:
// past the call's deadline it aborts the call (for example by panicking in
// a Go host function, which wazero returns as the call's error); otherwise
// it returns the next budget, a number in [1, 1<<30] (0 makes every check
// yield; a negative budget could wrap the counter). With why 1 (whyDepth)
// the call is too deep and yield must abort it (if it returns, the guest
// runs unreachable). why is an i32: a Go host reading it from the stack
// must look at the low 32 bits only. The counter starts at 0, so an instance's first check yields at
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
	ImportName   = "yield"              // (why i32) -> i32: see the package doc
)

// MaxDepth is the most nested calls a guest may make (see "Call depth" in
// the package doc). The deepest stock plugin nests fewer than 40 counted
// calls, the deepest SDK test guest fewer than 100 (measured by running the
// host's differential test under lower limits); 10,000 leaves room for a
// recursive parser on deeply nested input, and keeps wazero's stack for
// small frames near a megabyte (see transforms/RATIONALE.md).
const MaxDepth = 10_000

// Version changes whenever Instrument's output for the same input changes:
// the host keys its cache of instrumented modules on it.
const Version = "3"

// Why the guest calls yield: its argument.
const (
	whyBudget = 0 // the budget ran out: return the next one, or abort the call
	whyDepth  = 1 // the call depth passed MaxDepth: abort the call (a stack overflow)
)

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
