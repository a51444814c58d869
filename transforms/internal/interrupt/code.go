package interrupt

import "fmt"

// This file decodes function bodies. It must find exactly the instruction
// boundaries wazero v1.12 finds (internal/wasm/func_validation.go and the
// compiler's frontend, which agree): if the two disagreed on a module wazero
// accepts, wazero could run a loop or a global.set we never saw. So where
// wazero departs from the spec's encoding, the decoder follows wazero:
//   - the 0xFD (SIMD) and 0xFE (atomics) sub-opcodes are one byte, not a
//     LEB128. A spec encoder writes SIMD opcodes >= 0x80 as two bytes
//     (0x80 0x01 for i16x8.abs); wazero, and this decoder, read the 0x01 as a
//     separate nop, which is harmless and only costs one unit of weight;
//   - ref.null's heap type is a byte (func, extern, exn) or else an unsigned
//     LEB128 type index, not an s33 (see refNullType);
//   - try/catch/rethrow/delegate/catch_all (legacy exception handling,
//     0x06 0x07 0x09 0x18 0x19) are refused: wazero refuses them too.
//
// Opcodes wazero does not know are refused: an unknown opcode is never
// skipped by guessing its immediates. Where the decoder is stricter than
// wazero (it refuses LEB128 numbers with stray bits wazero ignores, a memory
// index flag wazero would reject later), the module is refused, which is
// safe.

// Instruction kinds, as far as budget checks care.
const (
	kPlain = iota // no control flow: falls through to the next instruction
	kBlock        // block, try_table: open a label, fall through into it
	kLoop         // loop
	kIf           // if
	kElse         // else
	kEnd          // end
	kJump         // br, br_if, br_table, br_on_*, return, unreachable, throw, throw_ref
	kCall         // call, call_indirect, return_call*, call_ref, return_call_ref
)

// maxLocals caps the locals a function may declare. It is not about
// interruption: a seven-byte body can declare four billion locals, and
// wazero allocates them all while decoding and compiling (400 million took
// 6.7 GB and 20 s in a test), a denial of service on the host before any
// guest code runs. Instrument sees every module first, so it refuses those.
// 50,000 is V8's limit; compilers emit far fewer.
const maxLocals = 50_000

// callCost is what a call weighs: the call itself plus the instructions the
// callee may run before its own first check (see weights.go).
const callCost = 1 + maxUncheckedPrefix

// Event kinds recorded while decoding a body, in body order.
const (
	evLoopStart = iota // right after a loop's block type: a check goes here
	evLoopEnd          // right after the end of a loop
	evFunc             // a function index immediate (call, return_call, ref.func) to renumber
	evCallStart        // at a counted call's opcode: the depth increment goes here
	evCallEnd          // right after a counted call's immediates: the depth decrement goes here
)

type event struct {
	kind   uint8
	pos    int    // input offset of the event (for evFunc: of the immediate)
	size   int    // evFunc: encoded length of the immediate
	val    uint32 // evFunc: the function index; evLoopStart: the loop's label ordinal
	cum    int64  // cost of the instructions decoded before pos
	weight int64  // evLoopStart: the weight its check charges (set by computeWeights)
}

// body is what decoding one function body yields.
type body struct {
	exprStart int // input offset of the first instruction (after the locals)
	events    []event
	total     int64 // cost of all instructions
	count     int   // number of instructions
	loops     int
	calls     int
	// counted is the number of calls that deepen the stack by a frame of
	// this module: call of a defined function, call_indirect, call_ref
	// (not return_call*, which replace the frame, nor a call of an import,
	// which is a host function that never calls back).
	counted int
	// prefixLen is the number of instructions up to and including the first
	// loop instruction when every instruction before it is plain or a block
	// (so the loop is certainly reached), else -1.
	prefixLen int
	entry     int64 // weight of the entry check (set by computeWeights)
}

// module-level facts the body decoder needs.
type codeCtx struct {
	origGlobals uint32 // imported + defined globals of the input
	totalFuncs  uint32 // imported + defined functions of the input
	importFuncs uint32 // imported functions of the input
	types       uint32 // types of the input (the added one is not for the module's use)
}

// ctrlFrame is an open block, loop, if (kElse once past its else) or
// try_table (kBlock).
type ctrlFrame struct {
	kind uint8
}

// decoder holds buffers reused across bodies.
type decoder struct {
	ctx   codeCtx
	b     []byte
	ctrl  []ctrlFrame
	stack []int64 // computeWeights' scratch
}

func opName(op byte, sub uint32, hasSub bool) string {
	if hasSub {
		return fmt.Sprintf("0x%02x 0x%02x", op, sub)
	}
	return fmt.Sprintf("0x%02x", op)
}

// decodeBody decodes the body spanning [start, end) (after its size prefix)
// into bd, reusing bd's event slice.
func (d *decoder) decodeBody(start, end int, bd *body) error {
	b := d.b
	*bd = body{events: bd.events[:0], prefixLen: -1}
	r := newReader(b, start, end)
	n := r.vec("local declarations", 2)
	var locals uint64
	for i := uint32(0); i < n && r.err == nil; i++ {
		locals += uint64(r.u32("local count"))
		readValType(r, d.ctx.types)
	}
	if r.err != nil {
		return r.err
	}
	if locals > maxLocals {
		return &Error{start, fmt.Sprintf("function declares %d locals, more than the %d allowed (wazero would allocate them all while compiling)", locals, maxLocals)}
	}
	bd.exprStart = r.pos
	d.ctrl = append(d.ctrl[:0], ctrlFrame{kind: kBlock}) // the function's own block
	var cum int64
	prefixOK := true
	labels := uint32(0)
	types := d.ctx.types
	pos := r.pos
	for pos < end {
		if len(d.ctrl) == 0 {
			return &Error{pos, "instructions after the function's final end"}
		}
		at := pos
		op := b[pos]
		pos++
		kind := uint8(kPlain)
		var err string
		var sub uint32
		hasSub := false
		switch {
		case op >= 0x45 && op <= 0xc4:
			// Numeric and sign-extension instructions: no immediates.
		case op >= 0x28 && op <= 0x3e: // loads and stores
			pos, err = memarg(b, pos, end)
		default:
			switch op {
			case 0x00: // unreachable
				kind = kJump
			case 0x01, 0x1a, 0x1b, 0xd1, 0xd4: // nop drop select ref.is_null ref.as_non_null
			case 0x0f, 0x0a: // return throw_ref
				kind = kJump
			case 0x02, 0x03, 0x04: // block loop if
				pos, err = blockType(b, pos, end, types)
				kind = [...]uint8{kBlock, kLoop, kIf}[op-0x02]
			case 0x1f: // try_table bt vec(catch)
				pos, err = blockType(b, pos, end, types)
				if err == "" {
					pos, err = catchClauses(b, pos, end)
				}
				kind = kBlock
			case 0x05:
				kind = kElse
			case 0x0b:
				kind = kEnd
			case 0x0c, 0x0d, 0xd5, 0xd6, 0x08: // br br_if br_on_null br_on_non_null throw
				pos, _, err = u32At(b, pos, end)
				kind = kJump
			case 0x0e: // br_table vec(label) label
				pos, err = brTable(b, pos, end)
				kind = kJump
			case 0x10, 0x12: // call return_call
				kind = kCall
			case 0xd2: // ref.func
			case 0x11, 0x13: // call_indirect return_call_indirect: type, table
				pos, err = typeIndex(b, pos, end, types)
				if err == "" {
					pos, _, err = u32At(b, pos, end)
				}
				kind = kCall
			case 0x14, 0x15: // call_ref return_call_ref: type
				pos, err = typeIndex(b, pos, end, types)
				kind = kCall
			case 0x1c: // typed select: vec(valtype)
				pos, err = typedSelect(b, pos, end, types)
			case 0x20, 0x21, 0x22, 0x25, 0x26, 0x3f, 0x40:
				// local.get/set/tee table.get/set: index;
				// memory.size/grow: memory index (wazero: a zero byte).
				pos, _, err = u32At(b, pos, end)
			case 0x23, 0x24: // global.get global.set
				var g uint32
				pos, g, err = u32At(b, pos, end)
				if err == "" && g >= d.ctx.origGlobals {
					return &Error{at, fmt.Sprintf("opcode 0x%02x: global index %d is not below the module's %d globals (it would name the interrupt counter)", op, g, d.ctx.origGlobals)}
				}
			case 0x41: // i32.const
				pos, err = sleb(b, pos, end, 32)
			case 0x42: // i64.const
				pos, err = sleb(b, pos, end, 64)
			case 0x43:
				pos, err = fixed(b, pos, end, 4)
			case 0x44:
				pos, err = fixed(b, pos, end, 8)
			case 0xd0: // ref.null heaptype
				pos, err = refNullType(b, pos, end, types)
			case 0xfc:
				hasSub = true
				pos, sub, err = u32At(b, pos, end)
				if err == "" {
					var known bool
					pos, known, err = miscImmediates(b, pos, end, sub)
					if !known {
						return &Error{at, "unknown opcode " + opName(op, sub, true)}
					}
				}
			case 0xfd, 0xfe: // SIMD, threads: a one-byte sub-opcode
				hasSub = true
				if pos >= end {
					err = "truncated"
					break
				}
				sub = uint32(b[pos])
				pos++
				immediates := simdImmediates
				if op == 0xfe {
					immediates = atomicImmediates
				}
				var known bool
				pos, known, err = immediates(b, pos, end, byte(sub))
				if !known {
					return &Error{at, "unknown opcode " + opName(op, sub, true)}
				}
			default:
				return &Error{at, "unknown opcode " + opName(op, 0, false)}
			}
		}
		// Function indices are read here, once, for call, return_call and
		// ref.func alike.
		if err == "" && (op == 0x10 || op == 0x12 || op == 0xd2) {
			immAt := pos
			var f uint32
			pos, f, err = u32At(b, pos, end)
			if err == "" {
				if f >= d.ctx.totalFuncs {
					return &Error{immAt, fmt.Sprintf("opcode 0x%02x: function index %d out of range (%d functions)", op, f, d.ctx.totalFuncs)}
				}
				if op == 0x10 && f >= d.ctx.importFuncs {
					bd.events = append(bd.events, event{kind: evCallStart, pos: at})
				}
				bd.events = append(bd.events, event{kind: evFunc, pos: immAt, size: pos - immAt, val: f})
				if op == 0x10 && f >= d.ctx.importFuncs {
					bd.events = append(bd.events, event{kind: evCallEnd, pos: pos})
					bd.counted++
				}
			}
		}
		// call_indirect and call_ref may reach any function of the module.
		if err == "" && (op == 0x11 || op == 0x14) {
			bd.events = append(bd.events, event{kind: evCallStart, pos: at}, event{kind: evCallEnd, pos: pos})
			bd.counted++
		}
		if err != "" {
			return &Error{at, fmt.Sprintf("opcode %s: %s", opName(op, sub, hasSub), err)}
		}

		bd.count++
		if kind == kCall {
			cum += callCost
			bd.calls++
		} else {
			cum++
		}
		if prefixOK && bd.loops == 0 && kind != kPlain && kind != kBlock && kind != kLoop {
			prefixOK = false
		}

		switch kind {
		case kBlock, kIf:
			labels++
			d.ctrl = append(d.ctrl, ctrlFrame{kind: kind})
		case kLoop:
			if bd.loops == 0 && prefixOK {
				bd.prefixLen = bd.count
			}
			bd.loops++
			d.ctrl = append(d.ctrl, ctrlFrame{kind: kLoop})
			bd.events = append(bd.events, event{kind: evLoopStart, pos: pos, val: labels, cum: cum})
			labels++
		case kElse:
			if d.ctrl[len(d.ctrl)-1].kind != kIf {
				return &Error{at, "else outside an if"}
			}
			d.ctrl[len(d.ctrl)-1].kind = kElse
		case kEnd:
			top := d.ctrl[len(d.ctrl)-1]
			d.ctrl = d.ctrl[:len(d.ctrl)-1]
			if top.kind == kLoop {
				bd.events = append(bd.events, event{kind: evLoopEnd, pos: pos, cum: cum})
			}
		}
	}
	if len(d.ctrl) != 0 {
		return &Error{end, "function body ends inside a block (missing end)"}
	}
	bd.total = cum
	return nil
}

// Immediate readers for bodies. They return the position after the
// immediate and, on failure, a message (the caller adds the offset and the
// opcode). They never read at or past end.

func u32At(b []byte, pos, end int) (int, uint32, string) {
	// Fast paths: one and two bytes (any such encoding is in range).
	if pos < end && b[pos] < 0x80 {
		return pos + 1, uint32(b[pos]), ""
	}
	if pos+1 < end && b[pos+1] < 0x80 {
		return pos + 2, uint32(b[pos]&0x7f) | uint32(b[pos+1])<<7, ""
	}
	v, n, msg := leb(b[pos:end], 32, false)
	return pos + n, uint32(v), msg
}

func sleb(b []byte, pos, end int, bits int) (int, string) {
	if pos < end && b[pos] < 0x80 {
		return pos + 1, ""
	}
	if pos+1 < end && b[pos+1] < 0x80 {
		return pos + 2, ""
	}
	_, n, msg := leb(b[pos:end], bits, true)
	return pos + n, msg
}

func fixed(b []byte, pos, end, n int) (int, string) {
	if end-pos < n {
		return pos, fmt.Sprintf("truncated: needs %d immediate bytes", n)
	}
	return pos + n, ""
}

// memarg: alignment, then (multi-memory: when bit 6 of the alignment is
// set) a memory index, then the offset.
func memarg(b []byte, pos, end int) (int, string) {
	pos, align, msg := u32At(b, pos, end)
	if msg != "" {
		return pos, msg
	}
	if align&0x40 != 0 {
		if pos, _, msg = u32At(b, pos, end); msg != "" {
			return pos, msg
		}
	}
	pos, _, msg = u32At(b, pos, end)
	return pos, msg
}

// Abstract heap types wazero knows (as s33 values).
const (
	heapFunc   = -16 // 0x70
	heapExtern = -17 // 0x6f
	heapExn    = -23 // 0x69
)

// heapType reads an abstract heap type or a type index below types.
func heapType(b []byte, pos, end int, types uint32) (int, string) {
	v, n, msg := leb(b[pos:end], 33, true)
	if msg != "" {
		return pos, msg
	}
	if h := int64(v); h < 0 && h != heapFunc && h != heapExtern && h != heapExn {
		return pos, fmt.Sprintf("unknown heap type 0x%02x", b[pos])
	} else if h >= int64(types) {
		return pos, typeRange(h, types)
	}
	return pos + n, ""
}

// refNullType reads ref.null's heap type the way wazero does (not as the
// spec's s33): one of the bytes 0x70, 0x6f, 0x69, or else an unsigned
// LEB128 type index. Both readings agree on every spec encoding wazero
// accepts, and this one also takes what wazero alone accepts. With types
// > 0 the index must be below it (in code wazero checks; in constant
// expressions it does not, and neither does this).
func refNullType(b []byte, pos, end int, types uint32) (int, string) {
	if pos >= end {
		return pos, "truncated"
	}
	switch b[pos] {
	case 0x70, 0x6f, 0x69:
		return pos + 1, ""
	}
	next, t, msg := u32At(b, pos, end)
	if msg == "" && types > 0 && t >= types {
		msg = typeRange(int64(t), types)
	}
	return next, msg
}

// typeRange is the message for a type index out of range. The rewrite
// appends a type, which would make the first index past the end valid: a
// module wazero rejects must stay rejected, so Instrument refuses it.
func typeRange(idx int64, types uint32) string {
	return fmt.Sprintf("type index %d out of range (%d types)", idx, types)
}

func typeIndex(b []byte, pos, end int, types uint32) (int, string) {
	pos, t, msg := u32At(b, pos, end)
	if msg == "" && t >= types {
		msg = typeRange(int64(t), types)
	}
	return pos, msg
}

// blockType: 0x40, a value type, or an s33 type index.
func blockType(b []byte, pos, end int, types uint32) (int, string) {
	v, n, msg := leb(b[pos:end], 33, true)
	if msg != "" {
		return pos, "block type: " + msg
	}
	switch bt := int64(v); {
	case bt >= 0: // type index
		if bt >= int64(types) {
			return pos, typeRange(bt, types)
		}
	case bt == -64, bt >= -5 && bt <= -1, bt == heapFunc, bt == heapExtern, bt == heapExn:
	case bt == -29 || bt == -28: // (ref null ht), (ref ht)
		return heapType(b, pos+n, end, types)
	default:
		return pos, fmt.Sprintf("unknown block type 0x%02x", b[pos])
	}
	return pos + n, ""
}

func catchClauses(b []byte, pos, end int) (int, string) {
	pos, n, msg := u32At(b, pos, end)
	if msg != "" {
		return pos, msg
	}
	if uint64(n)*2 > uint64(end-pos) {
		return pos, fmt.Sprintf("catch clause count %d exceeds the bytes left", n)
	}
	for i := uint32(0); i < n; i++ {
		if pos >= end {
			return pos, "truncated catch clause"
		}
		k := b[pos]
		pos++
		switch k {
		case 0x00, 0x01: // catch, catch_ref: tag, label
			if pos, _, msg = u32At(b, pos, end); msg != "" {
				return pos, msg
			}
		case 0x02, 0x03: // catch_all, catch_all_ref: label
		default:
			return pos - 1, fmt.Sprintf("unknown catch clause kind 0x%02x", k)
		}
		if pos, _, msg = u32At(b, pos, end); msg != "" {
			return pos, msg
		}
	}
	return pos, ""
}

func brTable(b []byte, pos, end int) (int, string) {
	pos, n, msg := u32At(b, pos, end)
	if msg != "" {
		return pos, msg
	}
	if uint64(n) > uint64(end-pos) {
		return pos, fmt.Sprintf("br_table label count %d exceeds the bytes left", n)
	}
	for i := uint64(0); i <= uint64(n); i++ { // n labels and the default
		if pos, _, msg = u32At(b, pos, end); msg != "" {
			return pos, msg
		}
	}
	return pos, ""
}

func typedSelect(b []byte, pos, end int, types uint32) (int, string) {
	pos, n, msg := u32At(b, pos, end)
	if msg != "" {
		return pos, msg
	}
	if uint64(n) > uint64(end-pos) {
		return pos, fmt.Sprintf("select type count %d exceeds the bytes left", n)
	}
	for i := uint32(0); i < n; i++ {
		r := newReader(b, pos, end)
		readValType(r, types)
		if r.err != nil {
			return pos, r.err.(*Error).Msg
		}
		pos = r.pos
	}
	return pos, ""
}

// miscImmediates reads the immediates of 0xFC sub-opcode sub; known is false
// for a sub-opcode wazero does not accept.
func miscImmediates(b []byte, pos, end int, sub uint32) (int, bool, string) {
	var idx int // number of u32 immediates
	switch {
	case sub <= 7: // saturating truncations
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
		// data.drop, memory.fill, elem.drop, table.grow/size/fill
		idx = 1
	case sub == 8, sub == 10, sub == 12, sub == 14:
		// memory.init, memory.copy, table.init, table.copy
		idx = 2
	default:
		return pos, false, ""
	}
	var msg string
	for i := 0; i < idx && msg == ""; i++ {
		pos, _, msg = u32At(b, pos, end)
	}
	return pos, true, msg
}

// simdUnknown lists the one-byte 0xFD sub-opcodes wazero v1.12 does not
// define (the SIMD spec leaves them unassigned).
var simdUnknown = [256]bool{
	0x9a: true, 0xa2: true, 0xa5: true, 0xa6: true, 0xaf: true, 0xb0: true,
	0xb2: true, 0xb3: true, 0xb4: true, 0xbb: true, 0xc2: true, 0xc5: true,
	0xc6: true, 0xcf: true, 0xd0: true, 0xd2: true, 0xd3: true, 0xd4: true,
	0xe2: true, 0xee: true,
}

func simdImmediates(b []byte, pos, end int, sub byte) (int, bool, string) {
	switch {
	case simdUnknown[sub]:
		return pos, false, ""
	case sub <= 0x0b, sub == 0x5c, sub == 0x5d: // loads, store, load_zero
		pos, msg := memarg(b, pos, end)
		return pos, true, msg
	case sub == 0x0c, sub == 0x0d: // v128.const, i8x16.shuffle
		pos, msg := fixed(b, pos, end, 16)
		return pos, true, msg
	case sub >= 0x15 && sub <= 0x22: // extract/replace lane
		pos, msg := fixed(b, pos, end, 1)
		return pos, true, msg
	case sub >= 0x54 && sub <= 0x5b: // load/store lane: memarg, lane
		pos, msg := memarg(b, pos, end)
		if msg == "" {
			pos, msg = fixed(b, pos, end, 1)
		}
		return pos, true, msg
	}
	return pos, true, ""
}

func atomicImmediates(b []byte, pos, end int, sub byte) (int, bool, string) {
	switch {
	case sub == 0x03: // atomic.fence: a reserved zero byte
		if pos >= end {
			return pos, true, "truncated"
		}
		if b[pos] != 0 {
			return pos, true, fmt.Sprintf("atomic.fence reserved byte is 0x%02x, not 0", b[pos])
		}
		return pos + 1, true, ""
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e:
		pos, msg := memarg(b, pos, end)
		return pos, true, msg
	}
	return pos, false, ""
}

// readValType reads a value type: a one-byte type, or 0x63/0x64 (nullable
// or not reference) followed by a heap type, whose type index must be below
// types.
func readValType(r *reader, types uint32) {
	at := r.pos
	switch t := r.byte("value type"); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
	case 0x63, 0x64:
		hat := r.pos
		if h := r.s33("heap type"); r.err == nil && h < 0 && h != heapFunc && h != heapExtern && h != heapExn {
			r.failf(hat, "unknown heap type %d", h)
		} else if r.err == nil && h >= int64(types) {
			r.failf(hat, "%s", typeRange(h, types))
		}
	default:
		if r.err == nil {
			r.failf(at, "unknown value type 0x%02x", t)
		}
	}
}
