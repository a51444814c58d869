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
	s    *Scratch
	json []byte
	// The Scratch's slices, one load closer: the walk reads them for
	// every member.
	nodes  []node
	kids   []kid
	groups []group
	out    []byte

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
	need := int(n) * RecordSize
	if need > cap(w.out) {
		w.out = append(w.out[:cap(w.out)], make([]byte, need-cap(w.out))...)
	}
	w.out = w.out[:need]
}

func (w *walker) put(r, typ, flags int32, num float64, start, length, a, b, stride int32) {
	off := int(r) * RecordSize
	o := w.out[off : off+RecordSize : off+RecordSize]
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
	json := w.json
	if i >= len(json) {
		return i, stBad
	}
	var na, nb *node
	inner := false
	if a >= 0 {
		na = &w.nodes[a]
		inner = na.inner
	}
	if b >= 0 {
		nb = &w.nodes[b]
		inner = inner || nb.inner
	}
	var end int
	var typ, flags int32
	var num float64
	if c := json[i]; c == '"' {
		// A string found here: its escapes are noted on the way.
		typ = TypeString
		if n := shortString(json, i); n < 8 {
			end = i + 1 + n
		} else {
			var esc, ok bool
			if end, esc, ok = closeQuoteEsc(json, i, n); !ok {
				return i, stBad
			}
			if esc {
				flags = FlagEscaped
			}
		}
		if end++; end < len(json) && !delim[json[end]] {
			return end, stBad
		}
	} else {
		var st state
		if inner && (c == '{' || c == '[') {
			end, st = w.container(i, a, b)
		} else {
			end, st = skip(json, i)
		}
		if st != stOK {
			return end, st
		}
		typ, num = kind(json[i:end])
	}
	// The first value found for a path ending here is its answer. (For a
	// '#' node, done means its group's container has been found, by
	// members when it is an object or an array.)
	if na != nil && na.ends && !na.done {
		na.done = true
		if na.leaf >= 0 {
			w.put(na.leaf, typ, flags, num, int32(i), int32(end-i), 0, 0, 0)
			w.remaining--
		}
		if na.each >= 0 {
			if g := &w.groups[w.nodes[na.each].group]; !g.done { // a scalar: no elements
				g.typ, g.flags, g.num, g.start, g.length, g.done = typ, flags, num, int32(i), int32(end-i), true
				w.remaining--
			}
		}
	}
	if nb != nil && nb.slot >= 0 && !nb.done {
		nb.done = true
		w.put(w.elemBase+nb.slot, typ, flags|w.elemFlags, num, int32(i), int32(end-i), w.elemKeyStart, w.elemKeyLen, 0)
	}
	if w.remaining == 0 {
		return end, stStop
	}
	return end, stOK
}

// kind classifies the valid value v, other than a string.
func kind(v []byte) (typ int32, num float64) {
	switch v[0] {
	case '{', '[':
		return TypeJSON, 0
	case 't':
		return TypeTrue, 0
	case 'f':
		return TypeFalse, 0
	case 'n':
		return TypeNull, 0
	}
	return TypeNumber, float(v)
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
	var g *group // the '#' group whose elements these are
	var each int32 = -1
	var ka, kb []kid // the children the members are matched with
	if a >= 0 {
		na := &w.nodes[a]
		if e := na.each; e >= 0 && !w.groups[w.nodes[e].group].done {
			g, each = &w.groups[w.nodes[e].group], e
			g.first = w.recs
		}
		ka = w.kids[na.kids:na.kidsEnd]
	}
	if b >= 0 {
		nb := &w.nodes[b]
		kb = w.kids[nb.kids:nb.kidsEnd]
	}
	var end int
	var st state
	if w.json[i] == '{' {
		end, st = w.object(i, ka, kb, g, each)
	} else {
		end, st = w.array(i, ka, kb, g, each)
	}
	if st == stOK && g != nil {
		g.typ, g.start, g.length, g.done = TypeJSON, int32(i), int32(end-i), true
		w.remaining--
	}
	return end, st
}

// object reads the members of the object at i: each member's value is
// walked for the children in ka and kb with its key, or as an element of
// g, or skipped.
func (w *walker) object(i int, ka, kb []kid, g *group, each int32) (int, state) {
	json := w.json
	var in indent
	if i = ws(json, i+1); i < len(json) && json[i] == '}' {
		return i + 1, stOK
	}
	for {
		if i >= len(json) || json[i] != '"' {
			return i, stBad
		}
		// The key, json[ks:ke].
		ks, ke, esc := i+1, 0, false
		if n := shortString(json, i); n < 8 {
			ke = ks + n
		} else {
			var ok bool
			if ke, esc, ok = closeQuoteEsc(json, i, n); !ok {
				return i, stBad
			}
		}
		if i = ws(json, ke+1); i >= len(json) || json[i] != ':' {
			return i, stBad
		}
		i++
		if i < len(json) && json[i] == ' ' { // pretty-printed JSON's one space
			i++
		}
		i = ws(json, i)
		var ca, cb int32 = -1, -1
		if len(ka) != 0 || len(kb) != 0 {
			key := json[ks:ke]
			if esc {
				var ok bool
				if key, ok = unescapeKey(w.s.ukey[:0:len(w.s.ukey)], key); !ok {
					return i, stBad
				}
			}
			h := keyHead(key)
			if len(ka) != 0 {
				ca = w.findKey(ka, h, key)
			}
			if len(kb) != 0 {
				cb = w.findKey(kb, h, key)
			}
		}
		var end int
		var st state
		switch {
		case g != nil:
			if !w.element(g, ks, ke-ks, esc) {
				return i, stBad
			}
			end, st = w.walk(i, ca, each)
			if st == stOK {
				w.elementEnd(g)
			}
			g.count++
		case ca < 0 && cb < 0:
			end, st = skipValue(json, i)
		default:
			end, st = w.walk(i, ca, cb)
		}
		if st != stOK {
			return end, st
		}
		if i = ws(json, end); i >= len(json) {
			return i, stBad
		}
		if json[i] == '}' {
			return i + 1, stOK
		}
		if json[i] != ',' {
			return i, stBad
		}
		if i++; in.match(json, i) { // after a comma: the indent, or learn it
			i += in.n - 1
		} else if j := ws(json, i); j > i {
			in.learn(json, i, j)
			i = j
		}
	}
}

// indent is the whitespace between the members of an object or array,
// and the byte after it. Pretty-printed JSON repeats it for every member:
// after the first, it is recognized by one or two comparisons whose
// outcome the processor predicts, where measuring it byte by byte would
// have the position of the next member wait for the measurement.
type indent struct {
	lo, hi   uint64 // its bytes, little-endian, the rest 0
	mlo, mhi uint64 // the masks of its bytes
	n        int    // its length, the byte after the whitespace included; 0 when none is known
}

// match reports whether s[i:] starts with the indent.
func (in *indent) match(s []byte, i int) bool {
	return in.n != 0 && i+16 <= len(s) && load64(s, i)&in.mlo == in.lo && load64(s, i+8)&in.mhi == in.hi
}

// learn remembers the whitespace s[i:j] with the byte after it.
func (in *indent) learn(s []byte, i, j int) {
	in.n = 0
	n := j + 1 - i
	if n > 16 || i+16 > len(s) {
		return
	}
	in.mlo, in.mhi = ^uint64(0), ^uint64(0)>>(64-8*max(n-8, 0))
	if n < 8 {
		in.mlo, in.mhi = ^uint64(0)>>(64-8*n), 0
	}
	in.lo, in.hi = load64(s, i)&in.mlo, load64(s, i+8)&in.mhi
	in.n = n
}

// array is object for the elements of the array at i, matched by index.
// Its loop mirrors object's on purpose: the step they share (walk one
// value, then find the next member past the indent) is the hottest code
// of a lookup, and a shared helper would be a call per member that the
// compiler does not inline (the separate loops came with the walker's
// 20% speed-up; they were not measured on their own).
func (w *walker) array(i int, ka, kb []kid, g *group, each int32) (int, state) {
	json := w.json
	var in indent
	if i = ws(json, i+1); i < len(json) && json[i] == ']' {
		return i + 1, stOK
	}
	for k := 0; ; k++ {
		ca, cb := findIndex(ka, k), findIndex(kb, k)
		var end int
		var st state
		switch {
		case g != nil:
			if !w.element(g, -1, 0, false) {
				return i, stBad
			}
			end, st = w.walk(i, ca, each)
			if st == stOK {
				w.elementEnd(g)
			}
			g.count++
		case ca < 0 && cb < 0:
			end, st = skipValue(json, i)
		default:
			end, st = w.walk(i, ca, cb)
		}
		if st != stOK {
			return end, st
		}
		if i = ws(json, end); i >= len(json) {
			return i, stBad
		}
		if json[i] == ']' {
			return i + 1, stOK
		}
		if json[i] != ',' {
			return i, stBad
		}
		if i++; in.match(json, i) { // after a comma: the indent, or learn it
			i += in.n - 1
		} else if j := ws(json, i); j > i {
			in.learn(json, i, j)
			i = j
		}
	}
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
		w.nodes[n].done = false
	}
	return true
}

// elementEnd writes the slots of the element that found no value: absent,
// with the element's key.
func (w *walker) elementEnd(g *group) {
	for slot, n := range g.slots {
		if !w.nodes[n].done {
			w.put(w.elemBase+int32(slot), TypeAbsent, w.elemFlags, 0, 0, 0, w.elemKeyStart, w.elemKeyLen, 0)
		}
	}
}

// findKey returns the node of the child in ks with this key (h its
// keyHead), or -1.
func (w *walker) findKey(ks []kid, h uint64, key []byte) int32 {
	for _, c := range ks {
		if c.head != h {
			continue
		}
		// The first 8 bytes are equal: the lengths and the rest decide.
		if k := w.nodes[c.node].key; len(k) == len(key) && (len(key) <= 8 || string(k[8:]) == string(key[8:])) {
			return c.node
		}
	}
	return -1
}

// findIndex returns the node of the child in ks for array index k, or -1.
func findIndex(ks []kid, k int) int32 {
	for _, c := range ks {
		if int(c.index) == k {
			return c.node
		}
	}
	return -1
}

// shortString returns how many bytes the string at i holds when its
// closing quote is among the next 8 bytes with no backslash before it.
// Else it returns 8 when those 8 bytes are plain (no quote, no backslash),
// 9 when not (or the document ends first): then call closeQuoteEsc with
// that answer. Most strings of a document, keys above all, are short and
// plain; a function call per string would cost about as much as the scan,
// so this inlines.
func shortString(s []byte, i int) int {
	if i+9 > len(s) {
		return 9
	}
	mq, mb := quotes(load64(s, i+1))
	if mb&(mq&-mq-1) != 0 { // a backslash before the first quote, or no quote
		return 9
	}
	return bits.TrailingZeros64(mq) / 8 // 8 when there is no quote
}

// quotes flags the quotes (mq) and the backslashes (mb) of x in the high
// bit of their bytes. A byte of q or b is 0 where x has one, and (v-ones)&^v
// flags the 0s; a borrow may also flag a byte above a 0, never one below:
// the lowest flag of either mask is a real quote or backslash.
func quotes(x uint64) (mq, mb uint64) {
	q, b := x^('"'*ones), x^('\\'*ones)
	return (q - ones) &^ q & highs, (b - ones) &^ b & highs
}

// closeQuoteEsc returns the index of the quote closing the string at i,
// and whether the string holds an escape; short is shortString's answer.
// It looks at 8 bytes at a time for a quote or a backslash (most of a JSON
// document is strings): cheaper than a call to bytes.IndexByte per string,
// and than a byte at a time past a few bytes.
func closeQuoteEsc(s []byte, i, short int) (end int, esc, ok bool) {
	j := i + 1
	if short == 8 {
		j += 8 // shortString read those
	}
	for j+8 <= len(s) {
		mq, mb := quotes(load64(s, j))
		m := mq | mb
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) / 8
		if mq&(m&-m) != 0 { // the first of the two is a quote
			return j, esc, true
		}
		esc = true
		j += 2 // a backslash and the byte it escapes
	}
	for ; j < len(s); j++ {
		switch s[j] {
		case '"':
			return j, esc, true
		case '\\':
			esc = true
			j++
		}
	}
	return 0, esc, false
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

// skipValue is skip, with the most common value, a short plain string,
// inline.
func skipValue(s []byte, i int) (int, state) {
	if i < len(s) && s[i] == '"' {
		if n := shortString(s, i); n < 8 && (i+n+2 == len(s) || delim[s[i+n+2]]) {
			return i + n + 2, stOK
		}
	}
	return skip(s, i)
}

// skip returns the end of the value at i, checking that it is valid JSON
// (strings are only checked for their closing quote: their content is
// returned as is, as gjson does). Iterative, so a deep document cannot
// exhaust the stack.
func skip(s []byte, i int) (int, state) {
	var kinds [MaxDepth / 64]uint64 // bit set: an object at that depth
	depth := 0
	var in indent // of the members last read
	for {
		// A value at i.
		if i >= len(s) {
			return i, stBad
		}
		switch c := s[i]; {
		case c == '"':
			if n := shortString(s, i); n < 8 {
				i += n + 2
			} else {
				q, _, ok := closeQuoteEsc(s, i, n)
				if !ok {
					return i, stBad
				}
				i = q + 1
			}
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
				goto key
			}
			continue
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
			if i = ws(s, i); i >= len(s) {
				return i, stBad
			}
			obj := kinds[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if c := s[i]; c == ',' {
				if i++; in.match(s, i) { // after a comma: the indent, or learn it
					i += in.n - 1
				} else if j := ws(s, i); j > i {
					in.learn(s, i, j)
					i = j
				}
				if obj {
					goto key
				}
				break
			} else if (obj && c == '}') || (!obj && c == ']') {
				i++
				depth--
				continue
			}
			return i, stBad
		}
		continue
	key:
		// `"key" :` at i, then its value.
		if i >= len(s) || s[i] != '"' {
			return i, stBad
		}
		if n := shortString(s, i); n < 8 {
			i += n + 2
		} else {
			q, _, ok := closeQuoteEsc(s, i, n)
			if !ok {
				return i, stBad
			}
			i = q + 1
		}
		if i = ws(s, i); i >= len(s) || s[i] != ':' {
			return i, stBad
		}
		i++
		if i < len(s) && s[i] == ' ' { // pretty-printed JSON's one space
			i++
		}
		i = ws(s, i)
	}
}
