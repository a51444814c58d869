package jsonget

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The walk: one pass over the document, following the trie. A value no
// path goes into is skipped (and checked); a value a path ends at is
// recorded when it is that path's first match.

type state uint8

const (
	stOK   state = iota
	stBad        // not valid JSON, or too deep: Eval cannot answer
	stStop       // every path is answered: stop reading
)

type walker struct {
	s         *Scratch
	json      []byte
	recs      int32 // records so far: one per path, then element records
	remaining int   // paths outside '#' and groups still without an answer
	depth     int

	// The element being read, when inside a '#' container.
	elemBase     int32
	elemKeyStart int32
	elemKeyLen   int32
	elemFlags    int32
}

// grow makes room for n records.
func (w *walker) grow(n int32) {
	s := w.s
	need := int(n) * RecordSize
	if need > cap(s.out) {
		s.out = append(s.out[:cap(s.out)], make([]byte, need-cap(s.out))...)
	}
	s.out = s.out[:need]
}

func (w *walker) put(r, typ, flags int32, num float64, start, length, a, b, stride int32) {
	off := int(r) * RecordSize
	o := w.s.out[off : off+RecordSize : off+RecordSize]
	le := binary.LittleEndian
	le.PutUint64(o[OffType:], uint64(uint32(typ))|uint64(uint32(flags))<<32)
	le.PutUint64(o[OffNum:], math.Float64bits(num))
	le.PutUint64(o[OffStart:], uint64(uint32(start))|uint64(uint32(length))<<32)
	le.PutUint64(o[OffKeyStart:], uint64(uint32(a))|uint64(uint32(b))<<32)
	le.PutUint64(o[OffStride:], uint64(uint32(stride)))
}

// walk reads the value at i (whitespace skipped) for trie node a (a path
// outside '#', or -1) and node b (inside the current element of a '#'
// container, or -1), and returns where the value ends.
func (w *walker) walk(i int, a, b int32) (int, state) {
	s, json := w.s, w.json
	if i >= len(json) {
		return i, stBad
	}
	var na, nb *node
	inner := false
	if a >= 0 {
		na = &s.nodes[a]
		inner = na.child >= 0 || na.each >= 0
	}
	if b >= 0 {
		nb = &s.nodes[b]
		inner = inner || nb.child >= 0
	}
	var end int
	var st state
	esc := false
	switch c := json[i]; {
	case inner && (c == '{' || c == '['):
		end, st = w.container(i, a, b)
	case c == '"':
		// A string found here: its escapes are noted on the way.
		var ok bool
		if end, esc, ok = closeQuoteEsc(json, i); !ok {
			return i, stBad
		}
		end++
		if end < len(json) && !delim[json[end]] {
			return end, stBad
		}
	default:
		end, st = skip(json, i)
	}
	if st != stOK {
		return end, st
	}
	leafA := na != nil && na.leaf >= 0 && !na.done
	leafB := nb != nil && nb.slot >= 0 && !nb.done
	groupA := na != nil && na.each >= 0 && !s.groups[s.nodes[na.each].group].done
	if leafA || leafB || groupA {
		typ, flags, num := w.kind(i, end, esc)
		if leafA {
			na.done = true
			w.put(na.leaf, typ, flags, num, int32(i), int32(end-i), 0, 0, 0)
			w.remaining--
		}
		if leafB {
			nb.done = true
			w.put(w.elemBase+nb.slot, typ, flags|w.elemFlags, num, int32(i), int32(end-i), w.elemKeyStart, w.elemKeyLen, 0)
		}
		if groupA { // a scalar where a '#' container was asked for: no elements
			g := &s.groups[s.nodes[na.each].group]
			g.typ, g.flags, g.num, g.start, g.length, g.done = typ, flags, num, int32(i), int32(end-i), true
			w.remaining--
		}
	}
	if w.remaining == 0 {
		return end, stStop
	}
	return end, stOK
}

// kind classifies the valid value at json[i:end]; esc tells whether a
// string holds escapes.
func (w *walker) kind(i, end int, esc bool) (typ, flags int32, num float64) {
	json := w.json
	switch json[i] {
	case '"':
		if esc {
			flags = FlagEscaped
		}
		return TypeString, flags, 0
	case '{', '[':
		return TypeJSON, 0, 0
	case 't':
		return TypeTrue, 0, 0
	case 'f':
		return TypeFalse, 0, 0
	case 'n':
		return TypeNull, 0, 0
	}
	return TypeNumber, 0, float(json[i:end])
}

// container reads the object or array at i, member by member.
func (w *walker) container(i int, a, b int32) (int, state) {
	if w.depth++; w.depth > MaxDepth {
		return i, stBad
	}
	end, st := w.members(i, a, b)
	w.depth--
	return end, st
}

// members reads the members of the object or array at i.
func (w *walker) members(i int, a, b int32) (int, state) {
	s, json := w.s, w.json
	var g *group // the '#' group whose elements these are
	var each int32 = -1
	if a >= 0 {
		if e := s.nodes[a].each; e >= 0 && !s.groups[s.nodes[e].group].done {
			g, each = &s.groups[s.nodes[e].group], e
			g.first = w.recs
		}
	}
	start := i
	obj := json[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = ws(json, i+1)
	if i < len(json) && json[i] == closer {
		i++
	} else {
		for k := 0; ; k++ {
			var key []byte
			keyStart, esc := -1, false
			if obj {
				if i >= len(json) || json[i] != '"' {
					return i, stBad
				}
				q, e, ok := closeQuoteEsc(json, i)
				if !ok {
					return i, stBad
				}
				keyStart, key, esc = i+1, json[i+1:q], e
				if i = ws(json, q+1); i >= len(json) || json[i] != ':' {
					return i, stBad
				}
				i = ws(json, i+1)
			}
			var ca, cb int32 = -1, -1
			var ok bool
			if a >= 0 {
				if ca, ok = w.match(a, key, esc, k, obj); !ok {
					return i, stBad
				}
			}
			if b >= 0 {
				if cb, ok = w.match(b, key, esc, k, obj); !ok {
					return i, stBad
				}
			}
			var end int
			var st state
			switch {
			case g != nil:
				if !w.element(g, keyStart, len(key), esc) {
					return i, stBad
				}
				end, st = w.walk(i, ca, each)
				if st == stOK {
					w.elementEnd(g)
				}
				g.count++
			case ca < 0 && cb < 0:
				end, st = skip(json, i)
			default:
				end, st = w.walk(i, ca, cb)
			}
			if st != stOK {
				return end, st
			}
			if i = ws(json, end); i >= len(json) {
				return i, stBad
			}
			if json[i] == closer {
				i++
				break
			}
			if json[i] != ',' {
				return i, stBad
			}
			i = ws(json, i+1)
		}
	}
	if g != nil {
		g.typ, g.start, g.length, g.done = TypeJSON, int32(start), int32(i-start), true
		w.remaining--
	}
	return i, stOK
}

// element starts the records of one element of group g: every slot absent
// until a path below the '#' finds its value. false: too many records.
func (w *walker) element(g *group, keyStart, keyLen int, esc bool) bool {
	if w.recs+g.stride > MaxRecords {
		return false
	}
	w.elemBase = w.recs
	w.elemKeyStart, w.elemKeyLen, w.elemFlags = int32(keyStart), int32(keyLen), 0
	if keyStart < 0 {
		w.elemKeyLen = -1
	}
	if esc {
		w.elemFlags = FlagKeyEscaped
	}
	w.recs += g.stride
	w.grow(w.recs)
	for _, n := range g.under {
		w.s.nodes[n].done = false
	}
	return true
}

// elementEnd writes the slots of the element that found no value: absent,
// with the element's key.
func (w *walker) elementEnd(g *group) {
	for slot, n := range g.slots {
		if !w.s.nodes[n].done {
			w.put(w.elemBase+int32(slot), TypeAbsent, w.elemFlags, 0, 0, 0, w.elemKeyStart, w.elemKeyLen, 0)
		}
	}
}

// match returns the child of node n for the member with this key (objects)
// or the element with index k (arrays), or -1. ok is false when the key has
// an escape this package does not read as gjson would.
func (w *walker) match(n int32, key []byte, esc bool, k int, obj bool) (int32, bool) {
	nodes := w.s.nodes
	c := nodes[n].child
	if c < 0 {
		return -1, true
	}
	if !obj {
		for ; c >= 0; c = nodes[c].next {
			if nodes[c].index == k {
				return c, true
			}
		}
		return -1, true
	}
	if esc {
		u, ok := unescapeKey(w.s.ukey[:0:len(w.s.ukey)], key)
		if !ok {
			return -1, false
		}
		key = u
	}
	tag := keyTag(key)
	for ; c >= 0; c = nodes[c].next {
		if nodes[c].tag == tag && string(nodes[c].key) == string(key) {
			return c, true
		}
	}
	return -1, true
}

// closeQuote returns the index of the quote closing the string at i. It
// looks at 8 bytes at a time for a quote or a backslash (most of a JSON
// document is strings): cheaper than a call to bytes.IndexByte per string.
func closeQuote(s []byte, i int) (int, bool) {
	j, _, ok := closeQuoteEsc(s, i)
	return j, ok
}

// closeQuoteEsc is closeQuote that also tells whether the string holds an
// escape.
func closeQuoteEsc(s []byte, i int) (end int, esc, ok bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	j := i + 1
	for {
		for j+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[j:])
			q, b := x^('"'*ones), x^('\\'*ones)
			// The lowest flagged byte is the first quote or backslash.
			if m := ((q-ones)&^q | (b-ones)&^b) & highs; m != 0 {
				j += bits.TrailingZeros64(m) / 8
				break
			}
			j += 8
		}
		for ; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				break
			}
		}
		if j >= len(s) {
			return 0, esc, false
		}
		if s[j] == '"' {
			return j, esc, true
		}
		esc = true
		j += 2 // a backslash and the byte it escapes
	}
}

// delim holds the bytes that may follow a value.
var delim = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, ',': true, ']': true, '}': true}

// number returns the end of the JSON number at i.
func number(s []byte, i int) (int, bool) {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i+1)
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(s []byte, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// skip returns the end of the value at i, checking that it is valid JSON
// (strings are only checked for their closing quote: their content is
// returned as is, as gjson does). Iterative, so a deep document cannot
// exhaust the stack.
func skip(s []byte, i int) (int, state) {
	var kinds [MaxDepth / 64]uint64 // bit set: an object at that depth
	depth := 0
	for {
		// A value at i.
		if i >= len(s) {
			return i, stBad
		}
		switch c := s[i]; {
		case c == '{' || c == '[':
			if depth == MaxDepth {
				return i, stBad
			}
			if c == '{' {
				kinds[depth/64] |= 1 << (depth % 64)
			} else {
				kinds[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = ws(s, i+1)
			if i < len(s) && s[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++
				depth--
				goto after
			}
			if c == '{' {
				var ok bool
				if i, ok = key(s, i); !ok {
					return i, stBad
				}
			}
			continue
		case c == '"':
			q, ok := closeQuote(s, i)
			if !ok {
				return i, stBad
			}
			i = q + 1
		case c == '-' || (c >= '0' && c <= '9'):
			var ok bool
			if i, ok = number(s, i); !ok {
				return i, stBad
			}
		case c == 't':
			if i+4 > len(s) || s[i+1] != 'r' || s[i+2] != 'u' || s[i+3] != 'e' {
				return i, stBad
			}
			i += 4
		case c == 'f':
			if i+5 > len(s) || s[i+1] != 'a' || s[i+2] != 'l' || s[i+3] != 's' || s[i+4] != 'e' {
				return i, stBad
			}
			i += 5
		case c == 'n':
			if i+4 > len(s) || s[i+1] != 'u' || s[i+2] != 'l' || s[i+3] != 'l' {
				return i, stBad
			}
			i += 4
		default:
			return i, stBad
		}
		// A scalar ends at a delimiter: "01" or "truex" is not a value
		// followed by garbage that a walk stopping early would not see.
		if i < len(s) && !delim[s[i]] {
			return i, stBad
		}
	after:
		// After a value: close containers, or go on to the next member.
		for {
			if depth == 0 {
				return i, stOK
			}
			obj := kinds[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if i = ws(s, i); i >= len(s) {
				return i, stBad
			}
			if c := s[i]; c == ',' {
				i = ws(s, i+1)
				if obj {
					var ok bool
					if i, ok = key(s, i); !ok {
						return i, stBad
					}
				}
				break
			} else if (obj && c == '}') || (!obj && c == ']') {
				i++
				depth--
				continue
			}
			return i, stBad
		}
	}
}

// key reads `"key" :` at i and returns where the value starts.
func key(s []byte, i int) (int, bool) {
	if i >= len(s) || s[i] != '"' {
		return i, false
	}
	q, ok := closeQuote(s, i)
	if !ok {
		return i, false
	}
	if i = ws(s, q+1); i >= len(s) || s[i] != ':' {
		return i, false
	}
	return ws(s, i+1), true
}
