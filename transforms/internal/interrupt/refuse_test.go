package interrupt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// oneFunc is a module with `globals` defined mutable i32 globals and one
// function () -> () with the given instructions (end included).
func oneFunc(globals int, instrs []byte) []byte {
	var gs [][]byte
	for i := 0; i < globals; i++ {
		gs = append(gs, []byte{0x7f, 0x01, 0x41, 0x00, 0x0b})
	}
	secs := [][]byte{sec(secType, fn(nil, nil)), sec(secFunction, u(0))}
	if globals > 0 {
		secs = append(secs, sec(secGlobal, gs...))
	}
	secs = append(secs, sec(secCode, code(noLocals, instrs)))
	return wasmModule(secs...)
}

func TestRefusals(t *testing.T) {
	legacyTry := watText(t, `(module (func (export "f") (try (do (nop)) (catch_all))))`, "--enable-exceptions")
	importsYield := watText(t, `(module (import "hookgate_interrupt" "yield" (func (result i32))))`)
	importsOther := watText(t, `(module (import "hookgate_interrupt" "other" (global i32)) (func))`)
	shared := plugintestWat(t, "shared.wat", []string{"--enable-threads"})
	sharedImport := watText(t, `(module (import "env" "mem" (memory 1 1 shared)))`, "--enable-threads")
	const marker = 0x01 // a nop before the bad instruction, to find its offset

	for _, tc := range []struct {
		name string
		bin  []byte
		// at is the byte sequence whose offset the error must name (the
		// first occurrence after the header), or nil to skip the check.
		at   []byte
		want string // the error message must contain this
	}{
		{"imports yield", importsYield, nil, `already imports from "hookgate_interrupt"`},
		{"imports other from our module", importsOther, nil, `already imports from "hookgate_interrupt"`},
		{"shared memory", shared, []byte{0x03, 0x01, 0x01}, "shared memory: memory.atomic.wait on it could block past any deadline"},
		{"shared memory import", sharedImport, []byte{0x03, 0x01, 0x01}, "shared memory"},
		{"global.get counter index", oneFunc(1, []byte{marker, 0x23, 0x01, 0x1a, 0x0b}), []byte{0x23, 0x01, 0x1a}, "opcode 0x23: global index 1 is not below the module's 1 globals"},
		{"global.set counter index", oneFunc(2, []byte{marker, 0x41, 0x00, 0x24, 0x02, 0x0b}), []byte{0x24, 0x02, 0x0b}, "opcode 0x24: global index 2"},
		{"global.get with no globals", oneFunc(0, []byte{marker, 0x23, 0x00, 0x1a, 0x0b}), []byte{0x23, 0x00, 0x1a}, "opcode 0x23: global index 0"},
		{"global initialiser", wasmModule(sec(secGlobal, []byte{0x7f, 0x00, 0x23, 0x02, 0x0b}, []byte{0x7f, 0x00, 0x41, 0x00, 0x0b})), []byte{0x23, 0x02, 0x0b}, "opcode 0x23: global index 2"},
		{"data offset", wasmModule(rawSec(secMemory, cat(u(1), []byte{0, 1})), sec(secData, cat(u(0), []byte{0x23, 0x00, 0x0b}, str("x")))), []byte{0x23, 0x00, 0x0b}, "opcode 0x23: global index 0"},
		{"element offset", wasmModule(rawSec(secTable, cat(u(1), []byte{0x70, 0, 1})), sec(secElement, cat(u(0), []byte{0x23, 0x00, 0x0b}, u(0)))), []byte{0x23, 0x00, 0x0b}, "opcode 0x23: global index 0"},
		{"unknown 0xfc 0x20", oneFunc(0, []byte{marker, 0xfc, 0x20, 0x0b}), []byte{0xfc, 0x20}, "unknown opcode 0xfc 0x20"},
		{"unknown 0xfc 128", oneFunc(0, []byte{marker, 0xfc, 0x80, 0x01, 0x0b}), []byte{0xfc, 0x80}, "unknown opcode 0xfc 0x80"},
		{"unknown 0xfd 0x9a", oneFunc(0, []byte{marker, 0xfd, 0x9a, 0x0b}), []byte{0xfd, 0x9a}, "unknown opcode 0xfd 0x9a"},
		{"unknown 0xfe 0x04", oneFunc(0, []byte{marker, 0xfe, 0x04, 0x0b}), []byte{0xfe, 0x04}, "unknown opcode 0xfe 0x04"},
		{"unknown 0x27", oneFunc(0, []byte{marker, 0x27, 0x0b}), []byte{0x27, 0x0b}, "unknown opcode 0x27"},
		{"unknown 0xd3", oneFunc(0, []byte{marker, 0xd3, 0x0b}), []byte{0xd3, 0x0b}, "unknown opcode 0xd3"},
		{"legacy try", legacyTry, []byte{0x06, 0x40}, "unknown opcode 0x06"},
		{"truncated v128.const", oneFunc(0, []byte{marker, 0xfd, 0x0c, 1, 2, 3}), []byte{0xfd, 0x0c}, "opcode 0xfd 0x0c: truncated"},
		{"truncated i32.const", oneFunc(0, []byte{marker, 0x41, 0x80}), []byte{0x41, 0x80}, "opcode 0x41: truncated LEB128"},
		{"truncated br_table", oneFunc(0, []byte{marker, 0x41, 0x00, 0x0e, 0x03, 0x00}), []byte{0x0e, 0x03}, "opcode 0x0e: br_table label count 3 exceeds"},
		{"missing end", oneFunc(0, []byte{marker, 0x02, 0x40, 0x0b}), nil, "missing end"},
		{"else outside if", oneFunc(0, []byte{marker, 0x05, 0x0b}), []byte{0x05, 0x0b}, "else outside an if"},
		// (table 1 (ref func) (ref.null func)) in a module importing no
		// function: wazero v1.12 checks the null against function 0's type,
		// which the added import would become (see typedInit).
		{"typed table initialiser", wasmModule(rawSec(secTable, cat(u(1), []byte{0x40, 0x00, 0x64, 0x70, 0x00, 0x01, 0xd0, 0x70, 0x0b}))), []byte{0xd0, 0x70, 0x0b}, "funcref initialiser of a typed reference"},
		{"bad magic", []byte("\x00asm\x02\x00\x00\x00"), nil, "bad magic or version"},
		{"truncated section", wasmModule(sec(secType, fn(nil, nil)))[:11], nil, "section 1: size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Instrument(tc.bin)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), fmt.Sprintf("interrupt: offset 0x%x: ", ie.Offset)) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			if tc.at != nil {
				if want := bytes.Index(tc.bin[8:], tc.at) + 8; ie.Offset != want {
					t.Errorf("offset 0x%x, want 0x%x", ie.Offset, want)
				}
			}
			t.Log(err)
			// wazero refuses them too: none of these is a valid module.
			// (An import from hookgate_interrupt and a shared memory are
			// valid; those refusals are ours alone.)
			if !strings.HasPrefix(tc.name, "imports") && !strings.HasPrefix(tc.name, "shared") {
				ctx := context.Background()
				rt := newRuntime(ctx)
				defer rt.Close(ctx)
				if _, err := rt.CompileModule(ctx, tc.bin); err == nil {
					t.Errorf("wazero accepts the module")
				}
			}
		})
	}
}

// TestTruncations cuts a real module at every length: Instrument must
// return an error (or, cut at a section boundary, a module) and never
// panic; the error's offset lies within the input.
func TestTruncations(t *testing.T) {
	for _, tc := range watCases {
		t.Run(tc.name, func(t *testing.T) {
			b := plugintestWat(t, tc.file, tc.flags)
			ok := 0
			for n := 0; n < len(b); n++ {
				_, err := Instrument(b[:n])
				if err == nil {
					ok++
					continue
				}
				var ie *Error
				if !errors.As(err, &ie) || ie.Offset < 0 || ie.Offset > n {
					t.Fatalf("cut at %d: %v", n, err)
				}
			}
			t.Logf("%d cuts, %d instrumented (cut at a section boundary)", len(b), ok)
		})
	}
}

// TestInputUnchanged checks that Instrument does not write to its input.
func TestInputUnchanged(t *testing.T) {
	for _, tc := range watCases {
		b := plugintestWat(t, tc.file, tc.flags)
		c := bytes.Clone(b)
		if _, err := Instrument(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, c) {
			t.Fatalf("%s: Instrument changed its input", tc.name)
		}
	}
}
