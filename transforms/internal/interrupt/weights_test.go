package interrupt

import (
	"fmt"
	"math/rand"
	"testing"
)

// The weights test runs instrumented code in a tiny interpreter (a subset of
// wasm: i32 locals, structured control, calls) that knows nothing of how
// weights are computed. It recognises each inserted check, reads its weight,
// and checks the claim the weights make: in every frame, the instructions
// run since the frame's last check never exceed that check's weight (a call
// counting 1 + maxUncheckedPrefix), and before its first check a frame runs
// at most maxUncheckedPrefix instructions.

// Generated functions all have type (i32) -> i32 and locals 1 (the
// accumulator) and 2 (fuel: every backward branch is guarded by it, so the
// programs end).
type gen struct {
	r      *rand.Rand
	b      []byte
	labels []byte // kinds of the open labels, innermost last: 'b', 'l', 'i'
	fn     int    // index of the function being generated
	nfuncs int
	size   int // instructions left to spend
}

func (g *gen) emit(b ...byte) { g.b = append(g.b, b...); g.size-- }

// forwardLabel picks the relative depth of a non-loop label, or -1. (The
// function's own label is left out: a branch to it would need the result.)
func (g *gen) forwardLabel() int {
	var ds []int
	for d := 0; d < len(g.labels); d++ {
		if g.labels[len(g.labels)-1-d] != 'l' {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return -1
	}
	return ds[g.r.Intn(len(ds))]
}

func (g *gen) loopLabel() int {
	var ds []int
	for d := 0; d < len(g.labels); d++ {
		if g.labels[len(g.labels)-1-d] == 'l' {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return -1
	}
	return ds[g.r.Intn(len(ds))]
}

// stmts emits stack-neutral statements.
func (g *gen) stmts(depth int) {
	for n := g.r.Intn(5); n >= 0 && g.size > 0; n-- {
		g.stmt(depth)
	}
}

func (g *gen) stmt(depth int) {
	k := g.r.Intn(12)
	if depth > 4 && k < 4 {
		k = 4 + g.r.Intn(8)
	}
	switch k {
	case 0: // block
		g.emit(0x02, 0x40)
		g.labels = append(g.labels, 'b')
		g.stmts(depth + 1)
		g.labels = g.labels[:len(g.labels)-1]
		g.emit(0x0b)
	case 1, 2: // loop with a fuel-guarded back edge somewhere inside
		g.emit(0x03, 0x40)
		g.labels = append(g.labels, 'l')
		g.stmts(depth + 1)
		g.backEdge(0)
		g.stmts(depth + 1)
		g.labels = g.labels[:len(g.labels)-1]
		g.emit(0x0b)
	case 3: // if/else
		g.emit(0x20, 0x01, 0x41, byte(g.r.Intn(64)), 0x71, 0x04, 0x40)
		g.labels = append(g.labels, 'i')
		g.stmts(depth + 1)
		if g.r.Intn(2) == 0 {
			g.emit(0x05)
			g.stmts(depth + 1)
		}
		g.labels = g.labels[:len(g.labels)-1]
		g.emit(0x0b)
	case 4, 5: // arithmetic on the accumulator
		g.emit(0x20, 0x01, 0x41, byte(g.r.Intn(64)), 0x6a, 0x21, 0x01)
	case 6: // forward br_if
		if d := g.forwardLabel(); d >= 0 {
			g.emit(0x20, 0x01, 0x41, byte(g.r.Intn(64)), 0x49, 0x0d, byte(d))
		}
	case 7: // br_table over forward labels
		if d := g.forwardLabel(); d >= 0 {
			g.emit(0x20, 0x01, 0x41, 0x03, 0x71, 0x0e, 0x02, byte(g.forwardLabel()), byte(d), byte(g.forwardLabel()))
		}
	case 8: // a backward branch to some enclosing loop
		if d := g.loopLabel(); d >= 0 {
			g.backEdge(d)
		}
	case 9: // call a later function (no recursion: the programs end)
		if g.fn+1 < g.nfuncs {
			g.emit(0x20, 0x01, 0x10, byte(g.fn+1+g.r.Intn(g.nfuncs-g.fn-1)), 0x21, 0x01)
		}
	case 10: // rarely: return, or an unconditional forward br
		if depth > 1 && g.r.Intn(10) == 0 {
			g.emit(0x20, 0x01, 0x0f)
		} else if d := g.forwardLabel(); d >= 0 && g.r.Intn(2) == 0 {
			g.emit(0x0c, byte(d))
		}
	default:
		g.emit(0x01)
	}
}

// backEdge: if ++fuel < 6 { br d } (d: a loop label). Fuel is per call,
// and calls nest, so it stays small.
func (g *gen) backEdge(d int) {
	g.emit(0x20, 0x02, 0x41, 0x01, 0x6a, 0x22, 0x02, 0x41, 0x06, 0x49, 0x0d, byte(d))
}

// genModule generates n functions; function 0 is exported as "run". Some
// open the Go way (a short prefix, then block; loop), some are tiny
// leaves.
func genModule(r *rand.Rand, n int) []byte {
	var bodies [][]byte
	for i := 0; i < n; i++ {
		g := &gen{r: r, fn: i, nfuncs: n, size: 10 + r.Intn(120)}
		kind := r.Intn(4)
		if i == 0 { // the entry: something to run
			kind, g.size = 2*r.Intn(2), 100+r.Intn(200) // Go-shaped or general
		}
		switch kind {
		case 0: // Go-shaped
			g.emit(0x20, 0x00, 0x21, 0x01, 0x02, 0x40, 0x03, 0x40)
			g.labels = []byte{'b', 'l'}
			g.stmts(2)
			g.backEdge(0)
			g.stmts(2)
			g.emit(0x0b, 0x0b)
			g.labels = nil
		case 1: // tiny leaf
			g.emit(0x20, 0x00, 0x41, byte(r.Intn(64)), 0x6a, 0x21, 0x01)
		default:
			g.stmts(0)
		}
		g.emit(0x20, 0x01, 0x0b)
		bodies = append(bodies, code(cat(u(1), u(2), []byte{0x7f}), g.b))
	}
	var funcs [][]byte
	for range bodies {
		funcs = append(funcs, u(0))
	}
	return wasmModule(
		sec(secType, fn(i32, i32)),
		sec(secFunction, funcs...),
		sec(secExport, export("run", 0, 0)),
		sec(secCode, bodies...))
}

// Interpreter.

type ifn struct {
	body      []byte
	locals    int
	matchEnd  map[int]int // position of block/loop/if -> position of its end
	matchElse map[int]int // position of if -> position of its else
	checks    map[int]check
	depth     map[int]int // position of inserted depth code -> position after it (run uncharged, like checks)
}

type check struct {
	weight int32
	next   int // position after the check
}

type iframe struct {
	since, allowance int
	checked          bool
}

type interp struct {
	t       *testing.T
	funcs   []*ifn // by function index (imports: nil)
	yield   uint32
	counter uint32
	steps   int
	checks  int
}

// load parses the instrumented module: the yield import is function 0.
func load(t *testing.T, b []byte, yield, counter uint32) *interp {
	t.Helper()
	secs, err := splitSections(b)
	if err != nil {
		t.Fatal(err)
	}
	in := &interp{t: t, yield: yield, counter: counter, funcs: make([]*ifn, yield+1)}
	for _, s := range secs {
		if s.id != secCode {
			continue
		}
		r := newReader(b, s.start, s.end)
		n := r.u32("")
		for i := uint32(0); i < n; i++ {
			size := r.u32("")
			end := r.pos + int(size)
			f := &ifn{matchEnd: map[int]int{}, matchElse: map[int]int{}, checks: map[int]check{}, depth: map[int]int{}}
			decls := r.u32("")
			for j := uint32(0); j < decls; j++ {
				f.locals += int(r.u32(""))
				r.byte("")
			}
			f.body = b[r.pos:end]
			in.scan(f)
			r.pos = end
			in.funcs = append(in.funcs, f)
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	return in
}

// scan matches blocks with their else and end, and recognises the checks
// (which must have exactly the documented shape).
func (in *interp) scan(f *ifn) {
	b := f.body
	var open []int
	for pc := 0; pc < len(b); {
		op := b[pc]
		switch op {
		case 0x23:
			if b[pc+1] == byte(in.counter+1) {
				next, ok := in.parseDepth(b, pc)
				if !ok {
					in.t.Fatalf("malformed depth code at %d: % x", pc, b[pc:min(pc+24, len(b))])
				}
				f.depth[pc] = next
				pc = next
				continue
			}
			if b[pc+1] != byte(in.counter) {
				in.t.Fatalf("global.get %d outside a check", b[pc+1])
			}
			c, ok := in.parseCheck(b, pc)
			if !ok {
				in.t.Fatalf("malformed check at %d: % x", pc, b[pc:min(pc+24, len(b))])
			}
			f.checks[pc] = c
			pc = c.next
			continue
		case 0x02, 0x03, 0x04:
			open = append(open, pc)
			pc += 2
		case 0x05:
			f.matchElse[open[len(open)-1]] = pc
			pc++
		case 0x0b:
			if len(open) > 0 {
				f.matchEnd[open[len(open)-1]] = pc
				open = open[:len(open)-1]
			}
			pc++
		case 0x0c, 0x0d, 0x10, 0x20, 0x21, 0x22, 0x41:
			_, n, _ := leb(b[pc+1:], 32, op == 0x41)
			pc += 1 + n
		case 0x0e:
			pc += 3 + int(b[pc+1])
		default: // 0x01 0x0f 0x1a 0x49 0x6a 0x71
			pc++
		}
	}
}

func (in *interp) parseCheck(b []byte, pc int) (check, bool) {
	c := byte(in.counter)
	if len(b) < pc+2 || b[pc+2] != 0x41 {
		return check{}, false
	}
	w, n, msg := leb(b[pc+3:], 32, true)
	if msg != "" {
		return check{}, false
	}
	rest := []byte{0x6b, 0x24, c, 0x23, c, 0x41, 0x00, 0x48, 0x04, 0x40, 0x41, whyBudget, 0x10, byte(in.yield), 0x24, c, 0x0b}
	p := pc + 3 + n
	if len(b) < p+len(rest) || string(b[p:p+len(rest)]) != string(rest) {
		return check{}, false
	}
	return check{weight: int32(w), next: p + len(rest)}, true
}

// parseDepth recognises the depth code at pc (an increment, a decrement or
// the entry check, in exactly the documented shape) and returns the
// position after it.
func (in *interp) parseDepth(b []byte, pc int) (int, bool) {
	d := byte(in.counter + 1)
	if len(b) >= pc+7 && b[pc+2] == 0x41 && b[pc+3] == 0x01 && (b[pc+4] == 0x6a || b[pc+4] == 0x6b) && b[pc+5] == 0x24 && b[pc+6] == d {
		return pc + 7, true
	}
	if len(b) < pc+3 || b[pc+2] != 0x41 {
		return 0, false
	}
	l, n, msg := leb(b[pc+3:], 32, true)
	if msg != "" || l != MaxDepth {
		return 0, false
	}
	rest := []byte{0x4b, 0x04, 0x40, 0x41, whyDepth, 0x10, byte(in.yield), 0x1a, 0x00, 0x0b}
	p := pc + 3 + n
	if len(b) < p+len(rest) || string(b[p:p+len(rest)]) != string(rest) {
		return 0, false
	}
	return p + len(rest), true
}

type label struct {
	target int  // where a branch goes
	height int  // value stack height at entry
	loop   bool // a branch to a loop keeps its label open
}

// call runs function f with argument arg.
func (in *interp) call(f uint32, arg int32, depth int) int32 {
	fn := in.funcs[f]
	locals := make([]int32, 1+fn.locals)
	locals[0] = arg
	var stack []int32
	labels := []label{{target: len(fn.body), height: 0}}
	fr := &iframe{allowance: maxUncheckedPrefix}
	pop := func() int32 { v := stack[len(stack)-1]; stack = stack[:len(stack)-1]; return v }
	charge := func(n int) {
		fr.since += n
		in.steps++
		if fr.since > fr.allowance {
			in.t.Fatalf("function %d: %d instructions since the last check (checked: %v), allowed %d", f, fr.since, fr.checked, fr.allowance)
		}
	}
	b := fn.body
	for pc := 0; ; {
		if in.steps > 5_000_000 {
			in.t.Fatal("too many steps")
		}
		if next, ok := fn.depth[pc]; ok {
			pc = next
			continue
		}
		if c, ok := fn.checks[pc]; ok {
			fr.since, fr.allowance, fr.checked = 0, int(c.weight), true
			in.checks++
			pc = c.next
			continue
		}
		op := b[pc]
		switch op {
		case 0x01: // nop
			charge(1)
			pc++
		case 0x02: // block
			charge(1)
			labels = append(labels, label{target: fn.matchEnd[pc] + 1, height: len(stack)})
			pc += 2
		case 0x03: // loop: a branch goes back to just after the header
			charge(1)
			labels = append(labels, label{target: pc + 2, height: len(stack), loop: true})
			pc += 2
		case 0x04: // if
			charge(1)
			cond := pop()
			labels = append(labels, label{target: fn.matchEnd[pc] + 1, height: len(stack)})
			if cond != 0 {
				pc += 2
			} else if e, ok := fn.matchElse[pc]; ok {
				pc = e + 1
			} else {
				pc = fn.matchEnd[pc] + 1
				labels = labels[:len(labels)-1]
			}
		case 0x05: // else: the then arm is done
			charge(1)
			pc = labels[len(labels)-1].target
			labels = labels[:len(labels)-1]
		case 0x0b: // end
			charge(1)
			labels = labels[:len(labels)-1]
			if len(labels) == 0 {
				return pop()
			}
			pc++
		case 0x0c: // br
			charge(1)
			pc = in.branch(fn, &labels, &stack, int(b[pc+1]))
		case 0x0d: // br_if
			charge(1)
			if pop() != 0 {
				pc = in.branch(fn, &labels, &stack, int(b[pc+1]))
			} else {
				pc += 2
			}
		case 0x0e: // br_table
			charge(1)
			n := int(b[pc+1])
			i := int(uint32(pop()))
			if i > n {
				i = n
			}
			pc = in.branch(fn, &labels, &stack, int(b[pc+2+i]))
		case 0x0f: // return
			charge(1)
			return pop()
		case 0x10: // call
			charge(callCost)
			if depth > 200 {
				in.t.Fatal("too deep")
			}
			stack = append(stack, in.call(uint32(b[pc+1]), pop(), depth+1))
			pc += 2
		case 0x20:
			charge(1)
			stack = append(stack, locals[b[pc+1]])
			pc += 2
		case 0x21:
			charge(1)
			locals[b[pc+1]] = pop()
			pc += 2
		case 0x22:
			charge(1)
			locals[b[pc+1]] = stack[len(stack)-1]
			pc += 2
		case 0x41:
			charge(1)
			v, n, _ := leb(b[pc+1:], 32, true)
			stack = append(stack, int32(v))
			pc += 1 + n
		case 0x49: // i32.lt_u
			charge(1)
			y, x := uint32(pop()), uint32(pop())
			stack = append(stack, b2i(x < y))
			pc++
		case 0x6a:
			charge(1)
			y, x := pop(), pop()
			stack = append(stack, x+y)
			pc++
		case 0x71:
			charge(1)
			y, x := pop(), pop()
			stack = append(stack, x&y)
			pc++
		default:
			in.t.Fatalf("interpreter: opcode 0x%02x", op)
		}
	}
}

// branch jumps to the label d levels out; a loop's label stays open.
func (in *interp) branch(fn *ifn, labels *[]label, stack *[]int32, d int) int {
	l := (*labels)[len(*labels)-1-d]
	*stack = (*stack)[:l.height]
	if l.loop {
		*labels = (*labels)[:len(*labels)-d]
	} else {
		*labels = (*labels)[:len(*labels)-1-d]
	}
	return l.target
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func TestWeightsBoundWork(t *testing.T) {
	var steps, checks int
	defer func() {
		t.Logf("%d instructions and %d checks interpreted", steps, checks)
		if checks < 5000 {
			t.Errorf("only %d checks ran: the generated programs are too tame", checks)
		}
	}()
	for seed := int64(0); seed < 500; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewSource(seed))
			orig := genModule(r, 1+r.Intn(8))
			inst, st, err := instrument(orig)
			if err != nil {
				t.Fatal(err)
			}
			// No imports and no globals: yield is function 0, the counter
			// global 0.
			in := load(t, inst, 0, 0)
			for arg := int32(0); arg < 4; arg++ {
				in.call(1, arg*7, 0)
			}
			steps += in.steps
			checks += in.checks
			if seed%50 == 0 {
				t.Logf("%d steps, %d checks run, %+v", in.steps, in.checks, *st)
				// And wazero agrees the rewrite changed nothing.
				differential(t, orig, false)
			}
		})
	}
}
