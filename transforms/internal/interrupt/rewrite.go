package interrupt

import (
	"bytes"
	"fmt"
)

// stats describes one rewrite; the tests use it.
type stats struct {
	functions    int // defined functions
	loopChecks   int
	entryChecks  int
	depthChecks  int // functions with a depth check at entry (those making counted calls)
	countedCalls int // call sites wrapped in a depth increment and decrement
	elidedPrefix int // entry checks left out: a loop header follows soon
	elidedLeaf   int // entry checks left out: a small loop-free, call-free leaf
}

// labelInfo records, per defined function, where checks were inserted, so
// label indices in the name section can follow (each check adds an if).
type labelInfo struct {
	entry    []uint32 // per defined function: checks at its entry (depth, budget), each an if before every label
	loopsAt  []int    // per defined function: start of its loop ordinals in ordinals
	ordinals []uint32 // label ordinals of loops, function after function
}

var magicVersion = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

func instrument(wasm []byte) ([]byte, *stats, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], magicVersion) {
		return nil, nil, &Error{0, "not a WebAssembly 1.0 binary module (bad magic or version)"}
	}
	secs, err := splitSections(wasm)
	if err != nil {
		return nil, nil, err
	}
	m, importOut, err := prepare(wasm, secs)
	if err != nil {
		return nil, nil, err
	}

	// The sections to add when missing, in the order they must appear. The
	// ones not placed before an existing section go right after the last
	// non-custom section, so that custom sections at the end stay at the
	// end (see lastEmpty below).
	added := []byte{secType, secImport, secGlobal}
	lastNonCustom := -1
	hasCode := false
	for i, s := range secs {
		if s.id != secCustom {
			lastNonCustom = i
		}
		hasCode = hasCode || s.id == secCode
	}
	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, magicVersion...)
	// lastEmpty tells whether the output so far ends with a custom section
	// without content. wazero v1.12 refuses a module that ends so (reading
	// zero bytes at the end of the input fails), so the output must end so
	// exactly when the input does.
	lastEmpty := false
	var lastDropped *section
	emitAdded := func(before int) error {
		for len(added) > 0 && sectionRank[added[0]] < before {
			var content []byte
			var err error
			switch added[0] {
			case secType:
				content = m.rewriteTypes(nil)
			case secImport:
				content = importOut
			case secGlobal:
				content, err = m.rewriteGlobals(nil)
			}
			if err != nil {
				return err
			}
			out = appendSection(out, added[0], content)
			lastEmpty = false
			added = added[1:]
		}
		return nil
	}
	st := &stats{}
	var labels labelInfo
	codeDone := !hasCode // the name section needs the code section's labels
	var names []section
	var nameAt []int // offsets in out where each deferred name section goes
	for i := range secs {
		s := secs[i]
		if i == lastNonCustom+1 {
			if err := emitAdded(len(sectionRank) + 1); err != nil {
				return nil, nil, err
			}
		}
		if s.id == secCustom {
			switch {
			case string(s.name) == "name" && codeDone:
				content, err := m.nameSection(s, &labels)
				if err != nil {
					return nil, nil, err
				}
				out = appendSection(out, secCustom, content)
			case string(s.name) == "name":
				// Before the code section (unusual): rewritten at the end.
				names = append(names, s)
				nameAt = append(nameAt, len(out))
			case isDebugSection(s.name) && s.bodyStart < s.end:
				// Dropped: DWARF refers to code offsets, which change. (An
				// empty one refers to nothing and stays.)
				lastDropped = &secs[i]
				continue
			default:
				out = appendSection(out, secCustom, wasm[s.start:s.end])
			}
			lastEmpty = s.bodyStart == s.end
			continue
		}
		if err := emitAdded(sectionRank[s.id]); err != nil {
			return nil, nil, err
		}
		lastEmpty = false
		var content []byte
		var err error
		switch s.id {
		case secType:
			content = m.rewriteTypes(&s)
			added = added[1:]
		case secImport:
			content = importOut
			added = added[1:]
		case secGlobal:
			content, err = m.rewriteGlobals(&s)
			added = added[1:]
		case secTable:
			content, err = m.rewriteTables(s)
		case secExport:
			content, err = m.rewriteExports(s)
		case secStart:
			content, err = m.rewriteStart(s)
		case secElement:
			content, err = m.rewriteElements(s)
		case secCode:
			if out, err = m.rewriteCode(out, s, st, &labels); err != nil {
				return nil, nil, err
			}
			codeDone = true
			continue
		case secData:
			err = m.checkData(s)
			content = wasm[s.start:s.end]
		case secFunction, secTag:
			err = m.checkTypeUses(s)
			content = wasm[s.start:s.end]
		case secMemory:
			err = m.checkMemories(s)
			content = wasm[s.start:s.end]
		default: // data count: no indices to renumber or check
			content = wasm[s.start:s.end]
		}
		if err != nil {
			return nil, nil, err
		}
		out = appendSection(out, s.id, content)
	}
	if err := emitAdded(len(sectionRank) + 1); err != nil {
		return nil, nil, err
	}
	inputLastEmpty := len(secs) > 0 && secs[len(secs)-1].id == secCustom && secs[len(secs)-1].bodyStart == secs[len(secs)-1].end
	if lastEmpty && !inputLastEmpty && lastDropped != nil {
		// Dropping DWARF sections left an empty custom section last: keep
		// the last one dropped, stale but harmless, rather than change
		// wazero's verdict.
		out = appendSection(out, secCustom, wasm[lastDropped.start:lastDropped.end])
	}
	if st.functions != int(m.definedFuncs) {
		return nil, nil, &Error{len(wasm), fmt.Sprintf("%d function declarations but %d bodies", m.definedFuncs, st.functions)}
	}
	if len(names) == 0 {
		return out, st, nil
	}
	// Splice the deferred name sections in at their places.
	final := make([]byte, 0, len(out)+len(out)/32)
	prev := 0
	for i, s := range names {
		content, err := m.nameSection(s, &labels)
		if err != nil {
			return nil, nil, err
		}
		final = append(final, out[prev:nameAt[i]]...)
		final = appendSection(final, secCustom, content)
		prev = nameAt[i]
	}
	return append(final, out[prev:]...), st, nil
}

// prepare reads what every section's rewrite needs to know about the
// others: the counts of types, imported and defined functions and globals.
// It also rewrites the import section (which it must decode anyway).
func prepare(wasm []byte, secs []section) (*module, []byte, error) {
	m := &module{b: wasm}
	find := func(id byte) *section {
		for i := range secs {
			if secs[i].id == id {
				return &secs[i]
			}
		}
		return nil
	}
	if s := find(secType); s != nil {
		if err := m.countTypes(*s); err != nil {
			return nil, nil, err
		}
	}
	importOut, err := m.rewriteImports(find(secImport))
	if err != nil {
		return nil, nil, err
	}
	for _, c := range []struct {
		id  byte
		dst *uint32
	}{{secFunction, &m.definedFuncs}, {secGlobal, &m.definedGlobs}} {
		if s := find(c.id); s != nil {
			r := newReader(wasm, s.start, s.end)
			*c.dst = r.vec("section entries", 1)
			if r.err != nil {
				return nil, nil, r.err
			}
		}
	}
	if m.totalFuncs() < m.importFuncs || m.origGlobals() < m.importGlobs || m.origGlobals() >= ^uint32(0)-1 {
		return nil, nil, &Error{8, "too many functions or globals"}
	}
	m.yieldFunc = m.importFuncs
	m.counter = m.origGlobals()
	m.counterEnc = appendU32(nil, m.counter)
	m.depthEnc = appendU32(nil, m.counter+1)
	m.yieldEnc = appendU32(nil, m.yieldFunc)
	return m, importOut, nil
}

// nameSection is the output's name section for input section s.
func (m *module) nameSection(s section, labels *labelInfo) ([]byte, error) {
	content, oversize, err := m.rewriteNames(s, labels)
	if oversize {
		return nil, err
	}
	if err != nil {
		// A name section this decoder cannot follow is copied as it is:
		// names are debug information, wazero reads them leniently, and the
		// same bytes get the same verdict from wazero (dropping them could
		// make a module wazero rejects acceptable). Its function names may
		// be off by one; nothing else depends on them.
		return m.b[s.start:s.end], nil
	}
	return content, nil
}

// rewriteCode appends the code section to dst, with the checks inserted
// and function indices renumbered in every body.
func (m *module) rewriteCode(dst []byte, s section, st *stats, labels *labelInfo) ([]byte, error) {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("function bodies", 2)
	if r.err != nil {
		return nil, r.err
	}
	// The section's size is known only at the end: the content goes after
	// room for the longest size encoding, and moves back once it is known.
	dst = append(dst, secCode)
	sizeAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0)
	contentAt := len(dst)
	dst = appendU32(dst, n)
	d := &decoder{b: m.b, ctx: codeCtx{origGlobals: m.origGlobals(), totalFuncs: m.totalFuncs(), importFuncs: m.importFuncs, types: m.types}}
	var bd body
	labels.entry = make([]uint32, 0, n)
	labels.loopsAt = make([]int, 0, n)
	for i := uint32(0); i < n; i++ {
		at := r.pos
		size := r.u32("function body size")
		if r.err != nil {
			return nil, r.err
		}
		if uint64(size) > uint64(r.end-r.pos) {
			return nil, &Error{at, fmt.Sprintf("function body size %d exceeds the %d bytes left", size, r.end-r.pos)}
		}
		start, end := r.pos, r.pos+int(size)
		r.pos = end
		if err := d.decodeBody(start, end, &bd); err != nil {
			return nil, err
		}
		d.computeWeights(&bd)
		entry := needsEntryCheck(&bd)
		depth := bd.counted > 0
		labels.entry = append(labels.entry, b2u(entry)+b2u(depth))
		labels.loopsAt = append(labels.loopsAt, len(labels.ordinals))
		st.functions++
		if depth {
			st.depthChecks++
		}
		st.countedCalls += bd.counted
		switch {
		case entry:
			st.entryChecks++
		case bd.loops > 0:
			st.elidedPrefix++
		default:
			st.elidedLeaf++
		}

		// The new body's size, from what changes: the checks added and the
		// function indices re-encoded.
		newSize := end - start
		if depth {
			newSize += m.depthCheckSize()
		}
		if entry {
			newSize += m.checkSize(bd.entry)
		}
		for _, e := range bd.events {
			switch e.kind {
			case evLoopStart:
				newSize += m.checkSize(e.weight)
			case evFunc:
				newSize += u32Size(m.funcIndex(e.val)) - e.size
			case evCallStart, evCallEnd:
				newSize += m.depthStepSize()
			}
		}
		dst = appendU32(dst, uint32(newSize))
		bodyAt := len(dst)

		dst = append(dst, m.b[start:bd.exprStart]...) // locals, verbatim
		if depth {
			dst = m.appendDepthCheck(dst)
		}
		if entry {
			dst = m.appendCheck(dst, bd.entry)
		}
		cursor := bd.exprStart
		for _, e := range bd.events {
			switch e.kind {
			case evLoopStart:
				dst = append(dst, m.b[cursor:e.pos]...)
				dst = m.appendCheck(dst, e.weight)
				cursor = e.pos
				st.loopChecks++
				labels.ordinals = append(labels.ordinals, e.val)
			case evFunc:
				dst = append(dst, m.b[cursor:e.pos]...)
				dst = appendU32(dst, m.funcIndex(e.val))
				cursor = e.pos + e.size
			case evCallStart, evCallEnd:
				dst = append(dst, m.b[cursor:e.pos]...)
				dst = m.appendDepthStep(dst, e.kind == evCallStart)
				cursor = e.pos
			}
		}
		dst = append(dst, m.b[cursor:end]...)
		if len(dst)-bodyAt != newSize { // a bug, not the input's fault
			return nil, &Error{at, fmt.Sprintf("internal error: body of %d bytes, computed %d", len(dst)-bodyAt, newSize)}
		}
	}
	if err := finish(r, "code"); err != nil {
		return nil, err
	}
	size := appendU32(nil, uint32(len(dst)-contentAt))
	copy(dst[sizeAt:], size)
	dst = append(dst[:sizeAt+len(size)], dst[contentAt:]...) // overlapping: copy moves left safely
	return dst, nil
}

// checkSize is the encoded size of a check charging w.
func (m *module) checkSize(w int64) int {
	return len(checkTemplate) + 4*len(m.counterEnc) + len(m.yieldEnc) + s32Size(clampWeight(w))
}

// checkTemplate is a check's fixed bytes (see appendCheck).
var checkTemplate = []byte{0x23, 0x41, 0x6b, 0x24, 0x23, 0x41, 0x00, 0x48, 0x04, 0x40, 0x41, whyBudget, 0x10, 0x24, 0x0b}

// appendCheck appends a budget check charging w:
//
//	global.get c; i32.const w; i32.sub; global.set c
//	global.get c; i32.const 0; i32.lt_s
//	if; i32.const whyBudget; call yield; global.set c; end
//
// Wasm has no global.tee; wazero's compiler reuses the value just stored
// for the second global.get. The if has the empty block type and leaves the
// stack as it found it, so loops with parameters or results stay valid.
func (m *module) appendCheck(dst []byte, w int64) []byte {
	dst = append(dst, 0x23)
	dst = append(dst, m.counterEnc...)
	dst = append(dst, 0x41)
	dst = appendS32(dst, clampWeight(w))
	dst = append(dst, 0x6b, 0x24)
	dst = append(dst, m.counterEnc...)
	dst = append(dst, 0x23)
	dst = append(dst, m.counterEnc...)
	dst = append(dst, 0x41, 0x00, 0x48, 0x04, 0x40, 0x41, whyBudget, 0x10)
	dst = append(dst, m.yieldEnc...)
	dst = append(dst, 0x24)
	dst = append(dst, m.counterEnc...)
	return append(dst, 0x0b)
}

// The call depth (see package doc, "Call depth"). Every counted call is
// wrapped in
//
//	global.get d; i32.const 1; i32.add; global.set d
//	call ...
//	global.get d; i32.const 1; i32.sub; global.set d
//
// and a function making counted calls starts with
//
//	global.get d; i32.const MaxDepth; i32.gt_u
//	if; i32.const whyDepth; call yield; drop; unreachable; end
//
// All of it leaves the value stack as it found it: the increment sits
// between a call's arguments and the call, the decrement after its results.

// depthStepSize is the encoded size of an increment or a decrement.
func (m *module) depthStepSize() int { return 5 + 2*len(m.depthEnc) }

func (m *module) appendDepthStep(dst []byte, inc bool) []byte {
	op := byte(0x6b) // i32.sub
	if inc {
		op = 0x6a // i32.add
	}
	dst = append(dst, 0x23)
	dst = append(dst, m.depthEnc...)
	dst = append(dst, 0x41, 0x01, op, 0x24)
	return append(dst, m.depthEnc...)
}

// depthCheckSize is the encoded size of the depth check at a function's entry.
func (m *module) depthCheckSize() int {
	return 1 + len(m.depthEnc) + 1 + s32Size(MaxDepth) + 1 + 2 + 2 + 1 + len(m.yieldEnc) + 3
}

func (m *module) appendDepthCheck(dst []byte) []byte {
	dst = append(dst, 0x23)
	dst = append(dst, m.depthEnc...)
	dst = append(dst, 0x41)
	dst = appendS32(dst, MaxDepth)
	dst = append(dst, 0x4b, 0x04, 0x40, 0x41, whyDepth, 0x10) // i32.gt_u; if; i32.const whyDepth; call
	dst = append(dst, m.yieldEnc...)
	return append(dst, 0x1a, 0x00, 0x0b) // drop; unreachable; end
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// yieldDebugName names the added import in the name section's function
// names, so stack traces through it read well.
const yieldDebugName = ImportModule + "." + ImportName

// rewriteNames renumbers the name section's subsections keyed by function
// index: 1 (function names, where the added import gets a name too), 2
// (local names) and 3 (label names, whose label indices also shift past the
// ifs the checks add). The others are copied. Function indices must ascend
// (the spec's rule), so the added name goes before the first defined
// function's.
// oversize reports a count or length past the section's end (see
// reader.oversize).
func (m *module) rewriteNames(s section, labels *labelInfo) (_ []byte, oversize bool, _ error) {
	dst := append([]byte(nil), m.b[s.start:s.bodyStart]...) // the name, verbatim
	r := newReader(m.b, s.bodyStart, s.end)
	for !r.done() {
		id := r.byte("name subsection id")
		size := r.u32("name subsection size")
		payload := r.bytes(uint64(size), "name subsection")
		if r.err != nil {
			return nil, r.oversize, r.err
		}
		if id < 1 || id > 3 {
			dst = append(dst, id)
			dst = appendU32(dst, size)
			dst = append(dst, payload...)
			continue
		}
		sr := newReader(m.b, r.pos-int(size), r.pos)
		var sub []byte
		n := sr.vec("names", 2)
		named := id != 1 // function names: the added import gets one too
		if named {
			sub = appendU32(sub, n)
		} else {
			sub = appendU32(sub, n+1)
		}
		for i := uint32(0); i < n && sr.err == nil; i++ {
			f := sr.u32("function index")
			if !named && f >= m.importFuncs {
				sub = appendU32(sub, m.yieldFunc)
				sub = appendName(sub, yieldDebugName)
				named = true
			}
			sub = appendU32(sub, m.funcIndex(f))
			if id == 1 {
				from := sr.pos
				sr.name("function name")
				sub = append(sub, m.b[from:sr.pos]...)
				continue
			}
			k := sr.vec("names", 2)
			sub = appendU32(sub, k)
			for j := uint32(0); j < k && sr.err == nil; j++ {
				idx := sr.u32("index")
				if id == 3 {
					idx = labels.shift(m, f, idx)
				}
				sub = appendU32(sub, idx)
				from := sr.pos
				sr.name("name")
				sub = append(sub, m.b[from:sr.pos]...)
			}
		}
		if !named { // every named function was imported: the yield comes last
			sub = appendU32(sub, m.yieldFunc)
			sub = appendName(sub, yieldDebugName)
		}
		if err := finish(sr, "name subsection"); err != nil {
			return nil, sr.oversize, err
		}
		dst = append(dst, id)
		dst = appendU32(dst, uint32(len(sub)))
		dst = append(dst, sub...)
	}
	return dst, false, r.err
}

// shift maps a label index of input function f to the output's: one more
// for an entry check, one more for each loop (and so each loop check's if)
// that comes before the label.
func (l *labelInfo) shift(m *module, f, label uint32) uint32 {
	if f < m.importFuncs || f-m.importFuncs >= uint32(len(l.entry)) {
		return label
	}
	i := f - m.importFuncs
	out := label + l.entry[i]
	end := len(l.ordinals)
	if int(i)+1 < len(l.loopsAt) {
		end = l.loopsAt[i+1]
	}
	for _, o := range l.ordinals[l.loopsAt[i]:end] {
		if o < label {
			out++
		}
	}
	return out
}
