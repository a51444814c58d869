package interrupt

import (
	"bytes"
	"fmt"
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the non-custom sections as the binary format requires
// (tags sit between memory and global, data count between element and
// code); 0 marks an unknown id.
var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secTag: 6, secGlobal: 7, secExport: 8, secStart: 9, secElement: 10,
	secDataCount: 11, secCode: 12, secData: 13,
}

type section struct {
	id         byte
	start, end int    // the content, after the size
	name       []byte // custom sections: the name
	bodyStart  int    // custom sections: after the name
}

// splitSections lists the sections after the 8-byte header, checking ids,
// sizes and order. On an error it also returns the sections before it.
func splitSections(b []byte) ([]section, error) {
	var secs []section
	lastRank := 0
	r := newReader(b, 8, len(b))
	for !r.done() {
		at := r.pos
		id := r.byte("section id")
		size := r.u32("section size")
		if r.err != nil {
			return secs, r.err
		}
		if uint64(size) > uint64(r.end-r.pos) {
			return secs, &Error{at, fmt.Sprintf("section %d: size %d exceeds the %d bytes left", id, size, r.end-r.pos)}
		}
		s := section{id: id, start: r.pos, end: r.pos + int(size)}
		r.pos = s.end
		if id == secCustom {
			cr := newReader(b, s.start, s.end)
			s.name = cr.name("custom section name")
			if cr.err != nil {
				return secs, cr.err
			}
			s.bodyStart = cr.pos
		} else {
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return secs, &Error{at, fmt.Sprintf("unknown section id %d", id)}
			}
			if sectionRank[id] <= lastRank {
				return secs, &Error{at, fmt.Sprintf("section %d out of order or repeated", id)}
			}
			lastRank = sectionRank[id]
		}
		secs = append(secs, s)
	}
	return secs, r.err
}

// module holds what the rewrite of each section needs to know about the
// others.
type module struct {
	b            []byte
	types        uint32 // number of types (rec group members count one each)
	typeEntries  uint32 // entries in the type section (a rec group is one)
	importFuncs  uint32
	importGlobs  uint32
	definedFuncs uint32
	definedGlobs uint32
	// Set by constExpr: it yields a funcref without naming a function
	// (ref.null func, or global.get of a funcref global) and has no
	// ref.func. See typedInit.
	anonFuncref bool
	// funcrefGlobals tells, for the globals decoded so far (imports, then
	// definitions), which have exactly the type funcref.
	funcrefGlobals []bool
	// Derived.
	yieldFunc  uint32 // the added import's function index
	counter    uint32 // the added global's index
	counterEnc []byte // LEB128 of counter
	depthEnc   []byte // LEB128 of the depth global's index, counter+1
	yieldEnc   []byte // LEB128 of yieldFunc
}

func (m *module) origGlobals() uint32 { return m.importGlobs + m.definedGlobs }
func (m *module) totalFuncs() uint32  { return m.importFuncs + m.definedFuncs }

// funcIndex maps an input function index to the output's: the added import
// comes after the imported functions, so defined functions shift by one.
func (m *module) funcIndex(f uint32) uint32 {
	if f < m.importFuncs {
		return f
	}
	return f + 1
}

// readFuncIndex reads a function index, refusing one out of range (shifting
// an out-of-range index could wrap it into range).
func (m *module) readFuncIndex(r *reader, what string) uint32 {
	at := r.pos
	f := r.u32(what)
	if r.err == nil && f >= m.totalFuncs() {
		r.failf(at, "%s %d out of range (%d functions)", what, f, m.totalFuncs())
	}
	return m.funcIndex(f)
}

// countTypes counts the types in the type section: plain function types and
// the members of rec groups (0x4e), as wazero numbers them.
func (m *module) countTypes(s section) error {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("types", 1)
	m.typeEntries = n
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.pos
		members := uint32(1)
		if r.pos < r.end && r.b[r.pos] == 0x4e {
			r.pos++
			members = r.vec("rec group members", 3)
		}
		for j := uint32(0); j < members && r.err == nil; j++ {
			if f := r.byte("function type"); r.err == nil && f != 0x60 {
				r.failf(at, "unknown type form 0x%02x", f)
			}
			for k := 0; k < 2 && r.err == nil; k++ { // params, results
				vs := r.vec("value types", 1)
				for v := uint32(0); v < vs && r.err == nil; v++ {
					readValType(r, ^uint32(0)) // wazero checks forward references
				}
			}
		}
		m.types += members
		if m.types < members {
			r.failf(at, "too many types")
		}
	}
	return finish(r, "type")
}

// finish checks that a section's reader consumed exactly the section.
func finish(r *reader, what string) error {
	if r.err == nil && r.pos != r.end {
		r.failf(r.pos, "%s section: %d bytes left over", what, r.end-r.pos)
	}
	return r.err
}

// rewriteTypes appends the yield function type (i32) -> i32 (as a type of
// its own, after any rec groups: its index is m.types).
func (m *module) rewriteTypes(s *section) []byte {
	dst := appendU32(nil, m.typeEntries+1)
	if s != nil {
		r := newReader(m.b, s.start, s.end)
		r.u32("types count") // already checked by countTypes
		dst = append(dst, m.b[r.pos:s.end]...)
	}
	return append(dst, 0x60, 0x01, 0x7f, 0x01, 0x7f)
}

// rewriteImports copies the imports, counts functions and globals, refuses
// an import from our module name, and appends the yield import. It runs
// once, before the other sections, since they need the counts; m.types must
// be set.
func (m *module) rewriteImports(s *section) ([]byte, error) {
	var dst []byte
	var n uint32
	var r *reader
	if s != nil {
		r = newReader(m.b, s.start, s.end)
		n = r.vec("imports", 4)
	} else {
		r = newReader(m.b, 0, 0)
	}
	dst = appendU32(dst, n+1)
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.pos
		mod := r.name("import module")
		r.name("import name")
		if r.err == nil && string(mod) == ImportModule {
			return nil, &Error{at, fmt.Sprintf("the module already imports from %q", ImportModule)}
		}
		kindAt := r.pos
		kind := r.byte("import kind")
		dst = append(dst, m.b[at:r.pos]...)
		switch kind {
		case 0x00: // function: type index
			from := r.pos
			m.typeIndex(r, "import type index")
			dst = append(dst, m.b[from:r.pos]...)
			m.importFuncs++
		case 0x01: // table (an initialiser is not allowed in an import)
			dst = m.tableType(r, dst, false)
		case 0x02: // memory
			from := r.pos
			memoryType(r)
			dst = append(dst, m.b[from:r.pos]...)
		case 0x03: // global
			from := r.pos
			m.globalType(r)
			dst = append(dst, m.b[from:r.pos]...)
			m.importGlobs++
			m.funcrefGlobals = append(m.funcrefGlobals, m.isFuncref(from))
		case 0x04: // tag: attribute, type index
			from := r.pos
			if a := r.byte("tag attribute"); r.err == nil && a != 0 {
				r.failf(from, "tag attribute 0x%02x is not 0", a)
			}
			m.typeIndex(r, "tag type index")
			dst = append(dst, m.b[from:r.pos]...)
		default:
			if r.err == nil {
				r.failf(kindAt, "unknown import kind 0x%02x", kind)
			}
		}
	}
	if s != nil {
		if err := finish(r, "import"); err != nil {
			return nil, err
		}
	}
	dst = appendName(dst, ImportModule)
	dst = appendName(dst, ImportName)
	dst = append(dst, 0x00)
	return appendU32(dst, m.types), nil
}

// memoryType is limits that must not be shared: with a shared memory,
// memory.atomic.wait blocks inside wazero for as long as its timeout says
// (or forever), where no check runs and no deadline can end it.
func memoryType(r *reader) {
	if at := r.pos; r.pos < r.end && r.b[at]&2 != 0 {
		r.failf(at, "shared memory: memory.atomic.wait on it could block past any deadline; plugins must use unshared memory")
		return
	}
	limits(r)
}

// checkMemories refuses a memory section declaring a shared memory (see
// memoryType).
func (m *module) checkMemories(s section) error {
	r := newReader(m.b, s.start, s.end)
	for n := r.vec("memories", 2); n > 0 && r.err == nil; n-- {
		memoryType(r)
	}
	return finish(r, "memory")
}

// limits: flags 0..3 (bit 0: has a maximum, bit 1: shared), minimum,
// optional maximum. wazero knows no other flags (no memory64).
func limits(r *reader) {
	at := r.pos
	flags := r.byte("limits")
	if r.err == nil && flags > 3 {
		r.failf(at, "unknown limits flags 0x%02x", flags)
	}
	r.u32("limits minimum")
	if flags&1 != 0 {
		r.u32("limits maximum")
	}
}

// typeIndex reads a type index and refuses one past the input's types (see
// typeRange).
func (m *module) typeIndex(r *reader, what string) {
	at := r.pos
	if t := r.u32(what); r.err == nil && t >= m.types {
		r.failf(at, "%s", typeRange(int64(t), m.types))
	}
}

// checkTypeUses checks the type indices of the function and tag sections.
func (m *module) checkTypeUses(s section) error {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("entries", 1)
	for i := uint32(0); i < n && r.err == nil; i++ {
		if s.id == secTag {
			at := r.pos
			if a := r.byte("tag attribute"); r.err == nil && a != 0 {
				r.failf(at, "tag attribute 0x%02x is not 0", a)
			}
		}
		m.typeIndex(r, "type index")
	}
	return finish(r, "function or tag")
}

func (m *module) globalType(r *reader) {
	readValType(r, m.types)
	at := r.pos
	if mut := r.byte("global mutability"); r.err == nil && mut > 1 {
		r.failf(at, "unknown global mutability 0x%02x", mut)
	}
}

// refType reads a table's or element segment's reference type.
func (m *module) refType(r *reader) {
	at := r.pos
	switch t := r.byte("reference type"); t {
	case 0x70, 0x6f, 0x69:
	case 0x63, 0x64:
		r.pos = at
		readValType(r, m.types)
	default:
		if r.err == nil {
			r.failf(at, "unknown reference type 0x%02x", t)
		}
	}
}

// tableType copies a table type, in the plain form (reftype limits) or,
// when allowInit, the form with an initialiser (0x40 0x00 reftype limits
// expr), renumbering the initialiser.
func (m *module) tableType(r *reader, dst []byte, allowInit bool) []byte {
	from := r.pos
	init := false
	if r.pos < r.end && r.b[r.pos] == 0x40 {
		if !allowInit {
			r.failf(r.pos, "table import with an initialiser")
			return dst
		}
		r.pos++
		if z := r.byte("table type"); r.err == nil && z != 0 {
			r.failf(r.pos-1, "table initialiser prefix 0x40 0x%02x", z)
		}
		init = true
	}
	typeAt := r.pos
	m.refType(r)
	limits(r)
	dst = append(dst, m.b[from:r.pos]...)
	if init {
		dst = m.typedInit(r, dst, typeAt)
	}
	return dst
}

// isFuncref reports a value type, at an offset already decoded, that is
// exactly funcref: 0x70, or 0x63 0x70 ((ref null func), which wazero reads
// as funcref).
func (m *module) isFuncref(at int) bool {
	return at < len(m.b) && (m.b[at] == 0x70 || m.b[at] == 0x63 && at+1 < len(m.b) && m.b[at+1] == 0x70)
}

// typedInit copies the initialiser of a table or global whose type starts
// at typeAt, working around a wazero v1.12 bug: its validation types a
// constant expression that yields a funcref without naming a function
// (ref.null func, global.get of a funcref global) as a non-null reference
// to function 0's type (validateConstExpression's lastRefFuncIdx defaults
// to 0). Whether that passes for a typed reference type (0x63, 0x64)
// depends on function 0, which the added import becomes in a module that
// imports no function: the rewrite would change wazero's verdict (a table
// of (ref func) initialised to null would become valid). Instrument refuses
// those modules; with an imported function, function 0 stays the same, and
// plain funcref and externref types pass or fail either way.
func (m *module) typedInit(r *reader, dst []byte, typeAt int) []byte {
	at := r.pos
	dst = m.constExpr(r, dst)
	if r.err == nil && m.importFuncs == 0 && m.anonFuncref && (m.b[typeAt] == 0x63 || m.b[typeAt] == 0x64) {
		r.failf(at, "funcref initialiser of a typed reference in a module importing no function (wazero v1.12 checks it against function 0, which the rewrite adds)")
	}
	return dst
}

// constExpr copies a constant expression, renumbering ref.func and refusing
// a global.get of the counter's index. With dst == nil it only checks. The
// opcodes are the ones wazero accepts in constant expressions
// (internal/wasm/binary/const_expr.go), extended-const included.
func (m *module) constExpr(r *reader, dst []byte) []byte {
	check := dst == nil
	m.anonFuncref = false
	refFunc := false
	defer func() { m.anonFuncref = m.anonFuncref && !refFunc }()
	for r.err == nil {
		at := r.pos
		op := r.byte("constant expression")
		if r.err != nil {
			break
		}
		var msg string
		switch op {
		case 0x0b: // end
			if !check {
				dst = append(dst, m.b[at:r.pos]...)
			}
			return dst
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // i32/i64 add sub mul
		case 0x41:
			r.pos, msg = sleb(r.b, r.pos, r.end, 32)
		case 0x42:
			r.pos, msg = sleb(r.b, r.pos, r.end, 64)
		case 0x43:
			r.pos, msg = fixed(r.b, r.pos, r.end, 4)
		case 0x44:
			r.pos, msg = fixed(r.b, r.pos, r.end, 8)
		case 0xd0: // ref.null (wazero checks no type index range here)
			if r.pos < r.end && r.b[r.pos] == 0x70 {
				m.anonFuncref = true
			}
			r.pos, msg = refNullType(r.b, r.pos, r.end, 0)
		case 0x23: // global.get
			g := r.u32("global index")
			if int(g) < len(m.funcrefGlobals) && m.funcrefGlobals[g] {
				m.anonFuncref = true
			}
			if r.err == nil && g >= m.origGlobals() {
				r.failf(at, "opcode 0x23: global index %d is not below the module's %d globals (it would name the interrupt counter)", g, m.origGlobals())
			}
		case 0xd2: // ref.func
			refFunc = true
			f := m.readFuncIndex(r, "ref.func function index")
			if !check && r.err == nil {
				dst = append(dst, op)
				dst = appendU32(dst, f)
			}
			continue
		case 0xfd: // v128.const only
			if sub := r.byte("constant expression"); r.err == nil && sub != 0x0c {
				r.failf(at, "unknown opcode 0xfd 0x%02x in a constant expression", sub)
			}
			r.pos, msg = fixed(r.b, r.pos, r.end, 16)
		default:
			r.failf(at, "unknown opcode 0x%02x in a constant expression", op)
		}
		if msg != "" {
			r.failf(at, "opcode 0x%02x: %s", op, msg)
		}
		if !check && r.err == nil {
			dst = append(dst, m.b[at:r.pos]...)
		}
	}
	return dst
}

func (m *module) rewriteTables(s section) ([]byte, error) {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("tables", 3)
	dst := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		dst = m.tableType(r, dst, true)
	}
	return dst, finish(r, "table")
}

// rewriteGlobals copies the globals and appends the budget counter (a
// mutable i32 starting at 0, so the first check yields and the host hands
// out the budget) and the call depth (a mutable i32 starting at 0). With
// s == nil the section is created.
func (m *module) rewriteGlobals(s *section) ([]byte, error) {
	dst := appendU32(nil, m.definedGlobs+2)
	if s != nil {
		r := newReader(m.b, s.start, s.end)
		n := r.vec("globals", 3)
		for i := uint32(0); i < n && r.err == nil; i++ {
			from := r.pos
			m.globalType(r)
			dst = append(dst, m.b[from:r.pos]...)
			dst = m.typedInit(r, dst, from)
			m.funcrefGlobals = append(m.funcrefGlobals, m.isFuncref(from))
		}
		if err := finish(r, "global"); err != nil {
			return nil, err
		}
	}
	// The budget counter, then the call depth.
	return append(dst, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b), nil
}

func (m *module) rewriteExports(s section) ([]byte, error) {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("exports", 3)
	dst := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		from := r.pos
		r.name("export name")
		kindAt := r.pos
		kind := r.byte("export kind")
		dst = append(dst, m.b[from:r.pos]...)
		switch kind {
		case 0x00:
			dst = appendU32(dst, m.readFuncIndex(r, "exported function index"))
		case 0x03: // global: the counter's index must not become exportable
			from := r.pos
			if g := r.u32("exported global index"); r.err == nil && g >= m.origGlobals() {
				r.failf(from, "exported global index %d is not below the module's %d globals (it would name the interrupt counter)", g, m.origGlobals())
			}
			dst = append(dst, m.b[from:r.pos]...)
		case 0x01, 0x02, 0x04:
			from := r.pos
			r.u32("export index")
			dst = append(dst, m.b[from:r.pos]...)
		default:
			if r.err == nil {
				r.failf(kindAt, "unknown export kind 0x%02x", kind)
			}
		}
	}
	return dst, finish(r, "export")
}

func (m *module) rewriteStart(s section) ([]byte, error) {
	r := newReader(m.b, s.start, s.end)
	dst := appendU32(nil, m.readFuncIndex(r, "start function index"))
	return dst, finish(r, "start")
}

// rewriteElements renumbers every element segment form: flags 0..7 (bit 0:
// passive or declarative, bit 1: explicit table index or declarative, bit
// 2: expressions instead of function indices).
func (m *module) rewriteElements(s section) ([]byte, error) {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("element segments", 2)
	dst := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.pos
		flags := r.u32("element segment flags")
		if r.err == nil && flags > 7 {
			r.failf(at, "unknown element segment flags %d", flags)
		}
		dst = append(dst, m.b[at:r.pos]...)
		from := r.pos
		if flags&3 == 2 { // active with a table index
			r.u32("table index")
			dst = append(dst, m.b[from:r.pos]...)
		}
		if flags&1 == 0 { // active: offset
			dst = m.constExpr(r, dst)
		}
		from = r.pos
		if flags&3 != 0 { // element kind (0x00) or reference type
			if flags&4 == 0 {
				if k := r.byte("element kind"); r.err == nil && k != 0 {
					r.failf(from, "unknown element kind 0x%02x", k)
				}
			} else {
				m.refType(r)
			}
			dst = append(dst, m.b[from:r.pos]...)
		}
		items := r.vec("element items", 1)
		dst = appendU32(dst, items)
		for j := uint32(0); j < items && r.err == nil; j++ {
			if flags&4 == 0 {
				dst = appendU32(dst, m.readFuncIndex(r, "element function index"))
			} else {
				dst = m.constExpr(r, dst)
			}
		}
	}
	return dst, finish(r, "element")
}

// checkData checks the data segments' offset expressions; the section is
// copied verbatim.
func (m *module) checkData(s section) error {
	r := newReader(m.b, s.start, s.end)
	n := r.vec("data segments", 2)
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.pos
		switch flags := r.u32("data segment flags"); {
		case r.err != nil:
		case flags == 0:
			m.constExpr(r, nil)
		case flags == 1:
		case flags == 2:
			r.u32("memory index")
			m.constExpr(r, nil)
		default:
			r.failf(at, "unknown data segment flags %d", flags)
		}
		size := r.u32("data size")
		r.bytes(uint64(size), "data")
	}
	return finish(r, "data")
}

// isDebugSection reports custom sections whose contents refer to code
// offsets, which the rewrite changes (DWARF).
func isDebugSection(name []byte) bool {
	return bytes.HasPrefix(name, []byte(".debug_"))
}
