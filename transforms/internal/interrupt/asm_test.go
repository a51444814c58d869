package interrupt

// A minimal assembler for modules wat2wasm (wabt 1.0.32) cannot write:
// exception handling with try_table, typed function references, table
// initialisers, and hostile modules that do not validate.

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u(v uint32) []byte { return appendU32(nil, v) }

func str(s string) []byte { return appendName(nil, s) }

// vec is a vector: the count, then the items.
func vec(items ...[]byte) []byte { return cat(u(uint32(len(items))), cat(items...)) }

func sec(id byte, items ...[]byte) []byte {
	content := vec(items...)
	return appendSection(nil, id, content)
}

// rawSec is a section whose content is not a vector.
func rawSec(id byte, content []byte) []byte { return appendSection(nil, id, content) }

func wasmModule(sections ...[]byte) []byte { return cat(magicVersion, cat(sections...)) }

// fn is a function type.
func fn(params, results []byte) []byte {
	return cat([]byte{0x60}, u(uint32(len(params))), params, u(uint32(len(results))), results)
}

// code is a function body: locals (already a vector) and instructions, with
// the size prefix.
func code(locals []byte, instrs ...[]byte) []byte {
	b := cat(locals, cat(instrs...))
	return cat(u(uint32(len(b))), b)
}

var noLocals = []byte{0}

func export(name string, kind byte, idx uint32) []byte {
	return cat(str(name), []byte{kind}, u(idx))
}

// Value types.
var (
	i32 = []byte{0x7f}
	i64 = []byte{0x7e}
)

// ehModule uses try_table with every catch clause kind, throw and
// throw_ref, and exceptions crossing calls and loops.
func ehModule() []byte {
	types := sec(secType,
		fn(nil, i32),                // 0: () -> i32
		fn(i32, nil),                // 1: (i32) -> ()  the tag's type
		fn(i32, i32),                // 2: (i32) -> i32
		fn(nil, []byte{0x7f, 0x69}), // 3: () -> (i32 exnref)
		fn(nil, nil),                // 4: () -> ()
	)
	funcs := sec(secFunction, u(2), u(0), u(2), u(1), u(2), u(0))
	tags := sec(secTag, []byte{0x00, 0x01})
	exports := sec(secExport,
		export("throw_catch", 0, 0), export("rethrow", 0, 1), export("across_calls", 0, 2),
		export("uncaught", 0, 4), export("catch_ref", 0, 5))
	bodies := sec(secCode,
		// 0 throw_catch (p) -> i32: throws p when p != 0, caught: p; else 7.
		code(noLocals,
			[]byte{0x02, 0x7f},                                           // block $h (result i32)
			[]byte{0x1f, 0x7f, 0x01, 0x00, 0x00, 0x00},                   // try_table (result i32) (catch 0 $h)
			[]byte{0x20, 0x00, 0x04, 0x40, 0x20, 0x00, 0x08, 0x00, 0x0b}, // if p: throw 0 (p)
			[]byte{0x41, 0x07},
			[]byte{0x0b, 0x0b, 0x0b}),
		// 1 rethrow () -> i32: catch_all_ref, throw_ref, caught again by catch_all.
		code(noLocals,
			[]byte{0x02, 0x40},                   // block $o
			[]byte{0x1f, 0x40, 0x01, 0x02, 0x00}, // try_table (catch_all $o)
			[]byte{0x02, 0x69},                   // block $r (result exnref)
			[]byte{0x1f, 0x40, 0x01, 0x03, 0x00}, // try_table (catch_all_ref $r)
			[]byte{0x41, 0x01, 0x08, 0x00},       // throw 0 (1)
			[]byte{0x0b, 0x00, 0x0b},             // end, unreachable, end
			[]byte{0x0a, 0x0b},                   // throw_ref, end
			[]byte{0x41, 0x7f, 0x0f, 0x0b},       // i32.const -1, return, end
			[]byte{0x41, 0xe3, 0x00, 0x0b}),      // i32.const 99
		// 2 across_calls (p) -> i32: a loop calling 3, which throws at
		// iteration p; the exception carries the iteration.
		code(cat(u(1), u(1), i32),
			[]byte{0x02, 0x7f},                         // block $h (result i32)
			[]byte{0x1f, 0x7f, 0x01, 0x00, 0x00, 0x00}, // try_table (result i32) (catch 0 $h)
			[]byte{0x03, 0x40},                         // loop $l
			[]byte{0x20, 0x01, 0x20, 0x00, 0x46, 0x04, 0x40, 0x20, 0x01, 0x10, 0x03, 0x0b},       // if i == p: call 3 (i)
			[]byte{0x20, 0x01, 0x41, 0x01, 0x6a, 0x22, 0x01, 0x41, 0xe4, 0x00, 0x48, 0x0d, 0x00}, // i++ ; br_if $l (i < 100)
			[]byte{0x0b},       // end loop
			[]byte{0x41, 0x7f}, // -1: not thrown
			[]byte{0x0b, 0x0b, 0x0b}),
		// 3 thrower (v): throw 0 (v * 10)
		code(noLocals, []byte{0x20, 0x00, 0x41, 0x0a, 0x6c, 0x08, 0x00, 0x0b}),
		// 4 uncaught (p) -> i32: throw, nothing catches.
		code(noLocals, []byte{0x20, 0x00, 0x08, 0x00, 0x0b}),
		// 5 catch_ref () -> i32: catch_ref delivers the payload and the
		// exnref (block type 3); the exnref is dropped.
		code(noLocals,
			[]byte{0x02, 0x03},                         // block (type 3) (result i32 exnref)
			[]byte{0x1f, 0x40, 0x01, 0x01, 0x00, 0x00}, // try_table (catch_ref 0 0)
			[]byte{0x41, 0x2a, 0x08, 0x00},             // throw 0 (42)
			[]byte{0x0b, 0x00, 0x0b},                   // end, unreachable, end
			[]byte{0x1a, 0x0b}),                        // drop the exnref
	)
	return wasmModule(types, funcs, tags, exports, bodies)
}

// funcRefModule uses typed function references: call_ref,
// return_call_ref, ref.as_non_null, br_on_null, br_on_non_null, (ref $t)
// locals, block and global types, a typed ref.null, and a table with an
// initialiser (the 0x40 0x00 form).
func funcRefModule() []byte {
	refT1 := []byte{0x64, 0x01}     // (ref 1)
	refNullT1 := []byte{0x63, 0x01} // (ref null 1)
	types := sec(secType,
		fn(nil, i32), // 0: () -> i32
		fn(i32, i32), // 1: (i32) -> i32
	)
	funcs := sec(secFunction, u(1), u(0), u(1), u(1), u(0))
	// Table 0: 4 funcrefs, every slot initialised to function 0 (double).
	tables := rawSec(secTable, cat(u(1), []byte{0x40, 0x00, 0x70, 0x00, 0x04, 0xd2, 0x00, 0x0b}))
	// Global 0: (ref 1) = ref.func 0.
	globals := sec(secGlobal, cat(refT1, []byte{0x00, 0xd2, 0x00, 0x0b}))
	exports := sec(secExport,
		export("callref", 0, 1), export("tail_callref", 0, 2), export("null_checks", 0, 3),
		export("table_init", 0, 4))
	elems := sec(secElement, cat(u(3), []byte{0x00}, vec(u(0)))) // declare func 0
	bodies := sec(secCode,
		// 0 double (x) -> i32
		code(noLocals, []byte{0x20, 0x00, 0x41, 0x02, 0x6c, 0x0b}),
		// 1 callref () -> i32: call_ref 1 (20, global 0) + call_ref through ref.func
		code(noLocals,
			[]byte{0x41, 0x14, 0x23, 0x00, 0x14, 0x01},
			[]byte{0x41, 0x03, 0xd2, 0x00, 0x14, 0x01},
			[]byte{0x6a, 0x0b}),
		// 2 tail_callref (x) -> i32: return_call_ref 1 (x+1, ref.func 0)
		code(noLocals, []byte{0x20, 0x00, 0x41, 0x01, 0x6a, 0xd2, 0x00, 0x15, 0x01, 0x0b}),
		// 3 null_checks (x) -> i32
		code(cat(u(1), u(1), refNullT1),
			[]byte{0x02, 0x40},             // block $null
			[]byte{0xd0, 0x01},             // ref.null 1
			[]byte{0xd5, 0x00},             // br_on_null $null
			[]byte{0x1a, 0x41, 0x05, 0x0f}, // drop; return 5 (not reached)
			[]byte{0x0b},
			cat([]byte{0x02}, refT1), // block $nn (result (ref 1))
			[]byte{0x23, 0x00},       // global.get 0
			[]byte{0xd6, 0x00},       // br_on_non_null $nn
			[]byte{0x41, 0x06, 0x0f}, // return 6 (not reached)
			[]byte{0x0b},
			[]byte{0xd4},                               // ref.as_non_null
			[]byte{0x21, 0x01},                         // local.set 1
			[]byte{0x20, 0x00, 0x20, 0x01, 0x14, 0x01}, // call_ref 1 (x, local 1)
			[]byte{0x0b}),
		// 4 table_init () -> i32: call_indirect through the initialised table
		code(noLocals, []byte{0x41, 0x15, 0x41, 0x03, 0x11, 0x01, 0x00, 0x0b}),
	)
	return wasmModule(types, funcs, tables, globals, exports, elems, bodies)
}
