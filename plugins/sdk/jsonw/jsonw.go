// Package jsonw builds JSON by appending to a reused byte slice: no
// reflection, no maps, no allocation once the buffer has grown to the size
// of the documents a plugin writes.
//
//	var w jsonw.Writer // zero value ready; keep one per plugin and Reset it
//
//	w.Reset()
//	w.ObjectStart()
//	w.Key("score")
//	w.Int(3)
//	w.Key("tags")
//	w.ArrayStart()
//	w.String("nps")
//	w.ArrayEnd()
//	w.ObjectEnd()
//	e.SetBody(w.Bytes()) // {"score":3,"tags":["nps"]}
//
// Commas and colons are placed by the writer. It does not check that
// starts and ends pair up or that keys appear only inside objects: write
// documents in order and the output is valid JSON.
//
// # Notes
//
// Strings are escaped as encoding/json does, minus HTML escaping: '"',
// '\\' and control characters are escaped (\n, \r, \t, \b, \f, else
// \u00XX), U+2028 and U+2029 become \u2028 and \u2029, other non-ASCII
// UTF-8 passes through unchanged, and an invalid UTF-8 byte becomes
// \ufffd, so the output is always valid UTF-8 JSON.
package jsonw

import (
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Writer appends a JSON document to an internal buffer.
type Writer struct {
	buf  []byte
	more bool // the current container already holds a value
	key  bool // a key was written, its value comes next
}

// Bytes returns the document written so far. It aliases the buffer: valid
// until the next Reset or write.
func (w *Writer) Bytes() []byte { return w.buf }

// Len returns the number of bytes written.
func (w *Writer) Len() int { return len(w.buf) }

// Reset empties the writer, keeping its buffer.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.more = false
	w.key = false
}

// sep writes the comma before a value when one is needed.
func (w *Writer) sep() {
	if w.key {
		w.key = false
		w.more = true
		return
	}
	if w.more {
		w.buf = append(w.buf, ',')
	}
	w.more = true
}

// ObjectStart writes '{'.
func (w *Writer) ObjectStart() { w.open('{') }

// ObjectEnd writes '}'.
func (w *Writer) ObjectEnd() { w.close('}') }

// ArrayStart writes '['.
func (w *Writer) ArrayStart() { w.open('[') }

// ArrayEnd writes ']'.
func (w *Writer) ArrayEnd() { w.close(']') }

// open starts an object or array: a value in its parent, with no member
// written yet.
func (w *Writer) open(c byte) {
	w.sep()
	w.buf = append(w.buf, c)
	w.more = false
}

// close ends an object or array, which is then a complete value of its
// parent.
func (w *Writer) close(c byte) {
	w.buf = append(w.buf, c)
	w.more = true
	w.key = false
}

// Key writes an object key; the next value written is its value.
func (w *Writer) Key(k string) {
	if w.more {
		w.buf = append(w.buf, ',')
	}
	w.buf = AppendString(w.buf, k)
	w.buf = append(w.buf, ':')
	w.key = true
}

// String writes s as a JSON string.
func (w *Writer) String(s string) {
	w.sep()
	w.buf = AppendString(w.buf, s)
}

// StringBytes writes b as a JSON string.
func (w *Writer) StringBytes(b []byte) {
	w.sep()
	w.buf = AppendString(w.buf, unsafe.String(unsafe.SliceData(b), len(b)))
}

// Int writes an integer.
func (w *Writer) Int(n int64) {
	w.sep()
	w.buf = strconv.AppendInt(w.buf, n, 10)
}

// Uint writes an unsigned integer.
func (w *Writer) Uint(n uint64) {
	w.sep()
	w.buf = strconv.AppendUint(w.buf, n, 10)
}

// Float writes a number the way encoding/json does (shortest text that
// reads back to f; exponent form below 1e-6 and from 1e21). NaN and
// infinities, which JSON cannot hold, are written as null.
func (w *Writer) Float(f float64) {
	w.sep()
	w.buf = AppendFloat(w.buf, f)
}

// Bool writes true or false.
func (w *Writer) Bool(v bool) {
	w.sep()
	w.buf = strconv.AppendBool(w.buf, v)
}

// Null writes null.
func (w *Writer) Null() {
	w.sep()
	w.buf = append(w.buf, "null"...)
}

// Raw writes b, which must be one valid JSON value (for example the .Raw of
// a value read with sdk.Get), unchanged. An empty b writes null.
func (w *Writer) Raw(b []byte) {
	w.sep()
	if len(b) == 0 {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = append(w.buf, b...)
}

// RawString is Raw for a string.
func (w *Writer) RawString(s string) {
	w.Raw(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// AppendFloat appends f as a JSON number (null for NaN and infinities).
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// AppendString appends s as a quoted, escaped JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// AppendEscaped appends the escaped content of s without the quotes: what
// goes between the quotes of a JSON string.
func AppendEscaped(dst []byte, s string) []byte {
	// Most text, and every key, is plain ASCII: copy the longest plain
	// ASCII prefix in one append, checking it 8 bytes at a time. In a wasm
	// guest a Go loop costs several ns per byte; this path costs about one
	// per 8 (and then no UTF-8 validation is needed for it).
	i := plainPrefix(s)
	if i == len(s) {
		return append(dst, s...)
	}
	dst = append(dst, s[:i]...)
	s = s[i:] // starts at a rune boundary: the prefix is ASCII
	if utf8.ValidString(s) {
		return appendEscapedValid(dst, s)
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end a line in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// Byte-parallel tests on 8 bytes in a uint64 ("SWAR"): each is non-zero
// exactly when some byte of x is < 0x20, '"', '\\', >= 0x80 (plain), or
// one of the first three or 0xE2 (valid: no multi-byte sequence of valid
// UTF-8 needs escaping but E2 80 A8/A9, U+2028/U+2029).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func hasZero(x uint64) uint64 { return (x - ones) & ^x & highs }

func special(x uint64) uint64 {
	return (x-0x20*ones)&^x&highs | hasZero(x^('"'*ones)) | hasZero(x^('\\'*ones))
}

func plain8(x uint64) bool { return special(x)|x&highs == 0 }

func valid8(x uint64) bool { return special(x)|hasZero(x^(0xE2*ones)) == 0 }

// plainPrefix returns the length of the longest prefix of s that is ASCII
// needing no escape.
func plainPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !plain8(load64(s, i)) {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			break
		}
	}
	return i
}

// appendEscapedValid is AppendEscaped for valid UTF-8, the usual case: it
// looks at bytes only, since no multi-byte sequence needs escaping except
// U+2028 and U+2029 (E2 80 A8, E2 80 A9).
func appendEscapedValid(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		// Skip 8 bytes at a time while none can need an escape.
		for i+8 <= len(s) && valid8(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xE2 {
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'f')
		case 0xE2:
			if i+2 >= len(s) || s[i+1] != 0x80 || (s[i+2] != 0xA8 && s[i+2] != 0xA9) {
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf])
			i += 2
		default:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}
