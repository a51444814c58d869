package sdk

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Scanner walks a JSON document once, front to back, handing each object
// member or array element to a callback that reads what it needs and lets
// the rest be skipped. It is the fastest way to take several values out of
// one body: Get scans from the start for every path, and ForEach reads a
// nested object twice (once to find its end, once to iterate it), which in
// a wasm guest costs several microseconds per pass over a few kilobytes.
//
//	var sc sdk.Scanner // reuse one per plugin
//
//	sc.Reset(e.Body())
//	sc.Object(func(key string) bool {
//		switch key {
//		case "event_type":
//			eventType = sc.Value()
//		case "entry":
//			sc.Object(func(key string) bool {
//				if key == "serial_number" {
//					serial = sc.Value()
//				}
//				return true // members not read are skipped
//			})
//		}
//		return true // false stops: the rest of the object is skipped
//	})
//
// # Notes
//
//   - Inside a callback, read the current value at most once, with Value,
//     Object or Array; not reading it skips it.
//   - Object and Array return false, reading nothing, when the value there
//     is not an object or array (a wrong type in the payload): the caller's
//     variables keep their zero values.
//   - Keys and Results point into the document (no copy), like Get.
//   - Malformed JSON never panics: the walk stops early and Err reports it.
type Scanner struct {
	s   string
	i   int
	bad bool
}

// Reset starts a walk of json.
func (sc *Scanner) Reset(json []byte) {
	sc.s = str(json)
	sc.i = 0
	sc.bad = false
}

// Err reports whether the document was malformed where the walk went.
func (sc *Scanner) Err() bool { return sc.bad }

func (sc *Scanner) ws() {
	s, i := sc.s, sc.i
	for i < len(s) && s[i] <= ' ' {
		i++
	}
	sc.i = i
}

// fail stops the walk: every enclosing loop sees the end of input.
func (sc *Scanner) fail() {
	sc.bad = true
	sc.i = len(sc.s)
}

// Object calls fn for each member of the object at the current position,
// with the scanner on the member's value.
func (sc *Scanner) Object(fn func(key string) bool) bool {
	sc.ws()
	if sc.i >= len(sc.s) || sc.s[sc.i] != '{' {
		return false
	}
	sc.i++
	for {
		sc.ws()
		if sc.i >= len(sc.s) {
			sc.bad = true
			return true
		}
		switch sc.s[sc.i] {
		case '}':
			sc.i++
			return true
		case ',':
			sc.i++
			continue
		case '"':
		default:
			sc.fail()
			return true
		}
		key, _ := sc.str()
		sc.ws()
		if sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
			sc.fail()
			return true
		}
		sc.i++
		sc.ws()
		start := sc.i
		more := fn(key)
		if sc.i == start {
			sc.skip()
		}
		if !more {
			sc.skipRest()
			return true
		}
	}
}

// Array calls fn for each element of the array at the current position,
// with the scanner on the element; i counts from 0.
func (sc *Scanner) Array(fn func(i int) bool) bool {
	sc.ws()
	if sc.i >= len(sc.s) || sc.s[sc.i] != '[' {
		return false
	}
	sc.i++
	for n := 0; ; {
		sc.ws()
		if sc.i >= len(sc.s) {
			sc.bad = true
			return true
		}
		switch sc.s[sc.i] {
		case ']':
			sc.i++
			return true
		case ',':
			sc.i++
			continue
		}
		start := sc.i
		more := fn(n)
		n++
		if sc.i == start {
			sc.skip()
		}
		if !more {
			sc.skipRest()
			return true
		}
	}
}

// Value reads the value at the current position: strings, numbers,
// booleans and null parsed as Get would, objects and arrays as their JSON
// text (Raw), ready for .Get or .ForEach.
func (sc *Scanner) Value() Result {
	sc.ws()
	if sc.i >= len(sc.s) {
		return Result{}
	}
	start := sc.i
	var r Result
	switch c := sc.s[sc.i]; c {
	case '"':
		r.Str, _ = sc.str()
		r.Type = gjson.String
	case '{', '[':
		sc.skip()
		r.Type = gjson.JSON
	case 't', 'f', 'n':
		sc.scalar()
		switch raw := sc.s[start:sc.i]; raw {
		case "true":
			r.Type = gjson.True
		case "false":
			r.Type = gjson.False
		case "null":
			r.Type = gjson.Null
		default:
			sc.fail()
			return Result{}
		}
	default:
		sc.scalar()
		num, err := strconv.ParseFloat(sc.s[start:sc.i], 64)
		if err != nil && sc.i == start {
			sc.fail()
			return Result{}
		}
		r.Type, r.Num = gjson.Number, num
	}
	r.Raw = sc.s[start:sc.i]
	r.Index = start
	return r
}

// The loops below work on local copies of sc.s and sc.i: in a wasm guest
// every access to a struct field behind a pointer is a memory load, and
// these loops run once per byte of the document.

// str reads a string at the current '"' and returns its content, and
// moves past it. Content with escapes is unescaped (which allocates).
func (sc *Scanner) str() (string, bool) {
	s := sc.s
	start := sc.i
	end := closingQuote(s, start+1)
	if end >= len(s) {
		sc.fail()
		return "", false
	}
	sc.i = end + 1
	content := s[start+1 : end]
	if strings.IndexByte(content, '\\') >= 0 {
		return gjson.Parse(s[start : end+1]).Str, true
	}
	return content, true
}

// scalar moves past a number or literal.
func (sc *Scanner) scalar() {
	s, i := sc.s, sc.i
	for i < len(s) {
		switch s[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			sc.i = i
			return
		}
		i++
	}
	sc.i = i
}

// skip moves past the value at the current position.
func (sc *Scanner) skip() {
	sc.ws()
	if sc.i >= len(sc.s) {
		return
	}
	switch sc.s[sc.i] {
	case '"':
		end := closingQuote(sc.s, sc.i+1)
		if end >= len(sc.s) {
			sc.fail()
			return
		}
		sc.i = end + 1
	case '{', '[':
		sc.i++
		sc.skipRest()
	default:
		start := sc.i
		sc.scalar()
		if sc.i == start {
			sc.fail()
		}
	}
}

// skipRest moves past the end of the object or array the scanner is in.
//
// Most of a JSON document is strings. strings.IndexByte is hand-written
// wasm in the Go runtime and several times faster than a Go loop compiled
// to wasm, so the scan jumps from quote to quote with it and counts
// brackets only in the short stretches between strings.
func (sc *Scanner) skipRest() {
	s, i, depth := sc.s, sc.i, 1
	for i < len(s) {
		q := strings.IndexByte(s[i:], '"')
		end := len(s)
		if q >= 0 {
			end = i + q
		}
		for ; i < end; i++ {
			switch s[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					sc.i = i + 1
					return
				}
			}
		}
		if q < 0 {
			break
		}
		if i = closingQuote(s, end+1); i >= len(s) {
			break
		}
		i++
	}
	sc.fail()
}

// closingQuote returns the index of the quote that ends the string whose
// content starts at i, or len(s) when there is none.
func closingQuote(s string, i int) int {
	start := i
	for {
		q := strings.IndexByte(s[i:], '"')
		if q < 0 {
			return len(s)
		}
		i += q
		// Escaped when preceded by an odd number of backslashes.
		n := 0
		for j := i - 1; j >= start && s[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
}
