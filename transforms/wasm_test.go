package transforms

// A tiny WebAssembly binary writer, enough to hand-assemble the modules the
// tests need: ones the host must refuse (a missing export, a foreign import,
// a wrong signature) and minimal guests whose cost is pure host overhead.

const (
	tI32 = 0x7f
	tI64 = 0x7e
)

type wasmImport struct {
	module, name    string
	params, results []byte
}

type wasmFunc struct {
	export          string // "" for none
	params, results []byte
	body            []byte // instructions, without the final end
}

type wasmModule struct {
	imports []wasmImport
	funcs   []wasmFunc
	memory  bool   // one page, exported as "memory"
	memName string // export name of the memory; "" means "memory"
}

func uleb(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wstr(b []byte, s string) []byte { return append(uleb(b, uint32(len(s))), s...) }

func section(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = uleb(b, uint32(len(body)))
	return append(b, body...)
}

func functype(b []byte, params, results []byte) []byte {
	b = append(b, 0x60)
	b = uleb(b, uint32(len(params)))
	b = append(b, params...)
	b = uleb(b, uint32(len(results)))
	return append(b, results...)
}

func (m wasmModule) encode() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	var types []byte
	n := uint32(0)
	for _, im := range m.imports {
		types = functype(types, im.params, im.results)
		n++
	}
	for _, f := range m.funcs {
		types = functype(types, f.params, f.results)
		n++
	}
	out = section(out, 1, append(uleb(nil, n), types...))

	if len(m.imports) > 0 {
		b := uleb(nil, uint32(len(m.imports)))
		for i, im := range m.imports {
			b = wstr(b, im.module)
			b = wstr(b, im.name)
			b = append(b, 0x00) // func
			b = uleb(b, uint32(i))
		}
		out = section(out, 2, b)
	}
	b := uleb(nil, uint32(len(m.funcs)))
	for i := range m.funcs {
		b = uleb(b, uint32(len(m.imports)+i))
	}
	out = section(out, 3, b)
	if m.memory {
		out = section(out, 5, []byte{1, 0x00, 1}) // one memory, min 1 page, no max
	}
	var ex []byte
	ne := uint32(0)
	if m.memory {
		name := m.memName
		if name == "" {
			name = "memory"
		}
		ex = wstr(ex, name)
		ex = append(ex, 0x02, 0)
		ne++
	}
	for i, f := range m.funcs {
		if f.export == "" {
			continue
		}
		ex = wstr(ex, f.export)
		ex = append(ex, 0x00)
		ex = uleb(ex, uint32(len(m.imports)+i))
		ne++
	}
	out = section(out, 7, append(uleb(nil, ne), ex...))
	code := uleb(nil, uint32(len(m.funcs)))
	for _, f := range m.funcs {
		body := append([]byte{0}, f.body...) // no locals
		body = append(body, 0x0b)
		code = uleb(code, uint32(len(body)))
		code = append(code, body...)
	}
	return section(out, 10, code)
}

// Instructions.
func i32const(v int32) []byte { return sleb([]byte{0x41}, int64(v)) }
func i64const(v int64) []byte { return sleb([]byte{0x42}, v) }
func call(idx uint32) []byte  { return uleb([]byte{0x10}, idx) }

var (
	opUnreachable = []byte{0x00}
	opDrop        = []byte{0x1a}
	opLoopForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop br 0 end
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var handleSig = struct{ params, results []byte }{[]byte{tI32, tI32}, []byte{tI32}}

// handleModule is a module exporting memory and a hookgate_handle with body.
func handleModule(body []byte, imports ...wasmImport) []byte {
	return wasmModule{
		imports: imports,
		memory:  true,
		funcs:   []wasmFunc{{export: "hookgate_handle", params: handleSig.params, results: handleSig.results, body: body}},
	}.encode()
}
