package interrupt

// Weights.
//
// A check at a loop header or function entry subtracts its weight w from the
// budget counter and yields when the counter drops below zero. For the
// budget to bound real work, w must bound the instructions that can run in
// this frame after the check and before the frame's next check (a callee's
// instructions are charged by the callee's own checks, plus a fixed amount
// per call, below).
//
// Within a frame, the only backward jumps are branches to a loop's label,
// which land on that loop's header, where a check sits (a try_table's catch
// clauses branch to labels too, so an exception caught in the same frame is
// no different). So the instructions
// that can run after a check at position p before the next check all lie
// after p, outside every loop that starts after p (entering such a loop runs
// its check). That set is:
//   - for a loop L: the instructions directly in L's body (nested loops count
//     only their loop instruction), plus those after L's end that belong
//     directly to L's enclosing loops or to no loop at all;
//   - for the entry: every instruction outside all loops.
// The weight is the cost of the whole set, not of the longest path through
// it (both arms of an if count, for instance): an over-estimate is safe, an
// under-estimate is the bug.
//
// So the weights over-estimate, by design, and for Go code by a lot: Go
// compiles each function around one loop (its resumption dispatcher) and
// every backward jump of the Go code into a branch to that loop, so each
// iteration of a Go loop charges about its whole function (in howxm-nps a
// median of 615 units, p99 6,636, at most 21,779). Budgets count these
// units, not instructions run.
//
// Each instruction costs 1, except calls (call, call_indirect, return_call*,
// call_ref, return_call_ref), which cost 1 + maxUncheckedPrefix: a callee
// whose entry check is left out may run up to maxUncheckedPrefix
// instructions before its first check, and that is paid by the caller.

// maxUncheckedPrefix is the most instructions a function may run from its
// entry before its first check when its entry check is left out.
const maxUncheckedPrefix = 32

// maxWeight caps a weight so that the counter arithmetic cannot wrap: with a
// budget of at most 1<<30 the counter stays within int32. Only a function
// whose weights exceed a billion instructions is charged less than its due.
const maxWeight = 1 << 30

// computeWeights sets the weight of every loop check (on the evLoopStart
// events) and of the entry check (bd.entry).
//
// It walks the loop events backwards keeping t, the cost of the
// instructions after the current position that belong to the loops open at
// that position or to no loop. Between two consecutive events every
// instruction belongs to the innermost open loop, so it adds to t. At a
// loop's end (walking backwards, entering the loop) t is saved; at its
// start t is the loop's weight, and the saved value comes back, since the
// loop's own instructions do not count for the checks before it.
func (d *decoder) computeWeights(bd *body) {
	t := int64(0)
	prev := bd.total
	stack := d.stack[:0]
	for i := len(bd.events) - 1; i >= 0; i-- {
		e := &bd.events[i]
		switch e.kind {
		case evLoopEnd:
			t += prev - e.cum
			prev = e.cum
			stack = append(stack, t)
		case evLoopStart:
			t += prev - e.cum
			prev = e.cum
			e.weight = t
			// decodeBody matched every loop start with an end.
			t = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
	}
	bd.entry = t + prev
	d.stack = stack
}

// needsEntryCheck reports whether the function needs a check at its entry.
// Entry checks stop recursion and loop-free call trees, but cost time on
// every call, so they are left out where a check is reached soon anyway:
//   - when a loop header is reached within maxUncheckedPrefix straight-line
//     instructions (only plain instructions and blocks before it, so the
//     loop is certainly entered). Go functions open with
//     "global.get SP; local.set; block; loop": most Go functions;
//   - for a leaf without loops or calls of at most maxUncheckedPrefix
//     instructions: it runs at most that many and returns.
//
// In both cases the caller's call weight pays for the unchecked prefix, and
// every instruction after the first loop header is charged by loop checks
// (their weights include the code after the loop).
func needsEntryCheck(bd *body) bool {
	if bd.prefixLen >= 0 && bd.prefixLen <= maxUncheckedPrefix {
		return false
	}
	if bd.loops == 0 && bd.calls == 0 && bd.count <= maxUncheckedPrefix {
		return false
	}
	return true
}

func clampWeight(w int64) int32 {
	if w > maxWeight {
		return maxWeight
	}
	if w < 1 {
		return 1
	}
	return int32(w)
}
