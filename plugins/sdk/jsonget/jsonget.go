// Package jsonget answers json_get, the host function of ABI v1's "json_get"
// capability (plugins/ABI.md): several JSON paths looked up in one pass
// over a document, natively, with the answer given as records of where
// each value lies in the document.
//
// Both hookgate hosts use it (the gateway's, package transforms, and the
// SDK's fake host for `go test`), so they answer alike; a host in another
// language implements ABI.md instead. Guests do not link it.
//
// Why: a Go guest compiled to WebAssembly spends several nanoseconds per
// byte walking JSON (4 ns/byte to skip, measured on the Howxm payload);
// this walk runs natively at a fraction of that, and the guest only decodes
// the few records it asked for.
//
// # Paths
//
// A path is a gjson path (github.com/tidwall/gjson SYNTAX.md) made only of
// object keys and array indexes separated by '.', with '\' escaping the next
// character, plus one extension: a component that is exactly '#' stands
// for each element of an array, or each member of an object. At most one
// '#' per path. For paths without '#' the answer is gjson.Get's: the first
// match in document order, backtracking over duplicate keys. For
// "P.#.Q" it is, for each element (or member value) E of gjson.Get(P),
// gjson.Get(E, Q) (E itself for "P.#").
//
// A path with any other gjson syntax (an unescaped '*', '?', '|', '@', '!',
// '[', ']', '{', '}', a '#' inside a component, an empty component) gets a
// TypeUnsupported record: the caller answers it some other way.
//
// # Strictness
//
// The walk checks that every part of the document it reads is valid JSON,
// except inside strings, where only the closing quote is looked for (as
// gjson does).
// Where it is not (or nests deeper than MaxDepth), Eval does not answer,
// instead of guessing what a lenient parser would have made of it: the
// caller falls back to its own parser, so answers never differ from gjson's.
// The walk stops once every path is answered, so what follows is not read.
package jsonget

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// RecordSize is the size of one record in the output.
const RecordSize = 40

// Record layout, little-endian, at offsets within a record.
const (
	OffType     = 0  // i32: a Type
	OffFlags    = 4  // i32: Flag bits
	OffNum      = 8  // f64: a number's value (strconv.ParseFloat of its text), else 0
	OffStart    = 16 // i32: offset of the value's first byte in the document
	OffLen      = 20 // i32: length of the value's JSON text
	OffKeyStart = 24 // i32: element record: offset of the member's key (inside the quotes), -1 for an array element; '#' path record: index of the path's first element record
	OffKeyLen   = 28 // i32: element record: length of the key, -1 for an array element; '#' path record: number of elements
	OffStride   = 32 // i32: '#' path record: records from one element's record to the next's; else 0
	// 36: reserved, 0
)

// Types of a record: gjson's Type numbering, plus two.
const (
	TypeUnsupported = -2 // the path uses syntax json_get does not answer
	TypeAbsent      = -1 // nothing at that path
	TypeNull        = 0
	TypeFalse       = 1
	TypeNumber      = 2
	TypeString      = 3
	TypeTrue        = 4
	TypeJSON        = 5 // an object or an array
)

// Flag bits of a record.
const (
	FlagEscaped    = 1 // a string value holds backslash escapes
	FlagKeyEscaped = 2 // an element record's key holds backslash escapes
)

// Limits of one Eval: past them it does not answer. They bound what a
// guest can make the host hold (40 bytes of record per element of a '#'
// array, on the host's side, would otherwise be unbounded).
const (
	MaxPaths     = 64       // paths in one list
	MaxPathBytes = 16 << 10 // bytes of the path list
	MaxSteps     = 256      // components of all paths together
	MaxDepth     = 512      // nesting of the document where the walk goes
	MaxRecords   = 1 << 16  // records of one answer
)

// node is one component of the paths, in a trie: paths sharing a prefix
// share its nodes, which is what lets one walk answer them all.
type node struct {
	key   []byte // the component, unescaped
	index int    // array index when the component is a plain number, else -1
	child int32  // first child, -1 none
	next  int32  // next sibling, -1 none
	each  int32  // the '#' child, -1 none
	leaf  int32  // record of the path ending here (outside '#'), -1 none
	slot  int32  // under '#': element slot of the path ending here, -1 none
	done  bool   // the leaf or slot has its first match (slots: in this element)
	inner bool   // a path goes into the value: child >= 0 || each >= 0
	ends  bool   // outside '#': a path or a '#' group ends here, leaf >= 0 || each >= 0
	group int32  // '#' nodes: index into Scratch.groups

	// The children again, as Scratch.kids[kids:kidsEnd], for matching.
	kids, kidsEnd int32
}

// kid is a child of a node as the walk looks it up: side by side in one
// slice, a node's children are compared without a pointer chase each.
type kid struct {
	head  uint64 // keyHead of the child's key: most keys that differ differ here
	node  int32
	index int32 // the child's index, -1 none (or one no array reaches)
}

// group is one '#' node: the element records of its paths.
type group struct {
	node   int32   // the '#' node
	stride int32   // records per element: the paths ending at or below it
	paths  []int32 // record of each of those paths, by slot
	slots  []int32 // node of each slot
	under  []int32 // nodes below the '#' node, for resetting done flags
	first  int32   // record index of element 0
	count  int32
	typ    int32 // type of the container; TypeAbsent until found
	flags  int32
	num    float64
	start  int32
	length int32
	done   bool
}

// Scratch is Eval's working memory. Keep one per caller and reuse it: a
// reused Scratch makes Eval allocate nothing once it has grown, and it
// remembers the last path list, so a caller asking the same paths call
// after call skips compiling them.
type Scratch struct {
	paths  []byte // copy of the path list the nodes were built from
	nodes  []node
	kids   []kid
	groups []group
	keys   []byte  // unescaped path components
	alias  []int32 // per path: the record it duplicates, or -1
	kinds  []int32 // per path: kindPlain, kindEach or TypeUnsupported
	npaths int
	ok     bool // the nodes match paths

	lastEscaped bool // the last component split off had escapes

	out  []byte    // the records
	ukey [256]byte // a document key unescaped for comparing
}

// Eval looks up each path of the path list paths (a sequence of entries,
// each a little-endian uint32 length and that many bytes of path) in json,
// and returns one record per path, then the element records of '#' paths.
// The records live in s until its next Eval. ok is false when Eval cannot
// answer (see the package doc).
func (s *Scratch) Eval(json, paths []byte) (records []byte, ok bool) {
	if !s.compile(paths) {
		return nil, false
	}
	w := walker{s: s, json: json, nodes: s.nodes, kids: s.kids, groups: s.groups, out: s.out[:0], recs: int32(s.npaths)}
	w.grow(w.recs)
	s.out = w.out
	for i := range s.nodes {
		s.nodes[i].done = false
	}
	// Each path's record: absent (or unsupported) until found.
	clear(w.out)
	for i := 0; i < s.npaths; i++ {
		typ := int32(TypeAbsent)
		switch s.kinds[i] {
		case TypeUnsupported:
			typ = TypeUnsupported
		case kindPlain:
			if s.alias[i] < 0 {
				w.remaining++
			}
		}
		binary.LittleEndian.PutUint32(w.out[i*RecordSize+OffType:], uint32(typ))
	}
	for g := range s.groups {
		gr := &s.groups[g]
		gr.first, gr.count, gr.typ, gr.flags, gr.num, gr.start, gr.length, gr.done = 0, 0, TypeAbsent, 0, 0, 0, 0, false
		w.remaining++
	}
	if w.remaining > 0 {
		i := ws(json, 0)
		if i >= len(json) || (json[i] != '{' && json[i] != '[') {
			// gjson looks for the first '{' or '[' anywhere, even inside
			// a string: not an answer worth copying.
			return nil, false
		}
		end, st := w.walk(i, 0, -1)
		s.out = w.out // kept as grown, even when this Eval fails
		if st == stBad {
			return nil, false
		}
		// More than one value. (A '#' over the whole document means
		// gjson.Parse's value, which is all of it: checked even when the
		// walk stopped, which it then does at the end of the root.)
		if (st == stOK || s.nodes[0].each >= 0) && ws(json, end) != len(json) {
			return nil, false
		}
		if e := s.nodes[0].each; e >= 0 {
			// gjson.Parse's Raw runs to the end, trailing space included.
			g := &s.groups[s.nodes[e].group]
			g.length = int32(len(json)) - g.start
		}
	}
	for g := range s.groups {
		gr := &s.groups[g]
		for slot, p := range gr.paths {
			w.put(p, gr.typ, gr.flags, gr.num, gr.start, gr.length, gr.first+int32(slot), gr.count, gr.stride)
		}
	}
	for i := 0; i < s.npaths; i++ {
		if a := s.alias[i]; a >= 0 {
			copy(s.out[i*RecordSize:(i+1)*RecordSize], s.out[a*RecordSize:(a+1)*RecordSize])
		}
	}
	return s.out, true
}

// ws skips JSON whitespace. It inlines: most tokens follow the one before
// directly, and then this is one comparison.
func ws(s []byte, i int) int {
	if i < len(s) && s[i] <= ' ' {
		return wsRun(s, i)
	}
	return i
}

// wsRun skips the whitespace at i. Pretty-printed JSON spends much of its
// length on indentation: the spaces after a newline go 8 bytes at a time.
// Not inlined, so that ws is (its loop would make ws too big to).
//
//go:noinline
func wsRun(s []byte, i int) int {
	for i < len(s) {
		c := s[i]
		if c > ' ' || !isSpace[c] {
			return i
		}
		i++
		if c != '\n' {
			continue
		}
		for i+8 <= len(s) {
			// The lowest byte that is not a space ends the run.
			n := bits.TrailingZeros64(load64(s, i)^(' '*ones)) / 8
			i += n
			if n < 8 {
				break
			}
		}
	}
	return i
}

var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// SWAR constants: a byte b repeated in each of a uint64's 8 bytes is b*ones.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// float reads a number's text as gjson does.
func float(raw []byte) float64 {
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
	return f
}

// unescapeKey unescapes a key's content (between the quotes) into buf as
// gjson does, for comparing with a path component. ok is false for an
// escape gjson would read differently from JSON (an unknown escape, bad
// hex, an unpaired surrogate, a control character) and when buf is too
// small: the caller then does not answer.
func unescapeKey(buf []byte, key []byte) ([]byte, bool) {
	out := buf[:0]
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < ' ' {
			return nil, false
		}
		if c != '\\' {
			if len(out) == cap(out) {
				return nil, false
			}
			out = append(out, c)
			continue
		}
		i++
		if i >= len(key) {
			return nil, false
		}
		var r rune
		switch key[i] {
		case '"', '\\', '/':
			r = rune(key[i])
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			if r, ok = hex4(key, i+1); !ok {
				return nil, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+2 >= len(key) || key[i+1] != '\\' || key[i+2] != 'u' {
					return nil, false
				}
				r2, ok := hex4(key, i+3)
				if !ok {
					return nil, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, false
				}
				i += 6
			}
		default:
			return nil, false
		}
		if len(out)+utf8.UTFMax > cap(out) {
			return nil, false
		}
		out = utf8.AppendRune(out, r)
	}
	return out, true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
