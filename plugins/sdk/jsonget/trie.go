package jsonget

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Compiling a path list into the trie the walk follows.

// Kinds of path, besides TypeUnsupported.
const (
	kindPlain = 0 // no '#'
	kindEach  = 1 // a '#' path, answered through its group
)

// compile builds the trie of the path list, or keeps the last one when the
// list is the same.
func (s *Scratch) compile(paths []byte) bool {
	if s.ok && bytes.Equal(paths, s.paths) {
		return true
	}
	if len(paths) > MaxPathBytes {
		return false
	}
	s.ok = false
	s.paths = append(s.paths[:0], paths...)
	s.nodes = append(s.nodes[:0], node{index: -1, child: -1, next: -1, each: -1, leaf: -1, slot: -1, group: -1})
	s.groups = s.groups[:0]
	s.keys = s.keys[:0]
	s.alias = s.alias[:0]
	s.kinds = s.kinds[:0]
	s.npaths = 0
	steps := 0
	rest := s.paths
	for len(rest) > 0 {
		if len(rest) < 4 || s.npaths == MaxPaths {
			return false
		}
		n := binary.LittleEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return false
		}
		path := rest[4 : 4+n]
		rest = rest[4+n:]
		s.alias = append(s.alias, -1)
		s.kinds = append(s.kinds, 0)
		if !s.add(path, &steps) {
			s.kinds[s.npaths] = TypeUnsupported
		}
		if steps > MaxSteps {
			return false
		}
		s.npaths++
	}
	// A '#' container inside another's element would interleave the two
	// groups' element records: such lists are not answered.
	for g := range s.groups {
		for h := range s.groups {
			if g != h && s.inside(s.groups[h].node, s.parent(s.groups[g].node)) {
				return false
			}
		}
	}
	for g := range s.groups {
		gr := &s.groups[g]
		gr.under = gr.under[:0]
		s.collect(gr.node, gr)
		for _, p := range gr.paths {
			s.kinds[p] = kindEach
		}
	}
	s.kids = s.kids[:0]
	for i := range s.nodes {
		nd := &s.nodes[i]
		nd.inner = nd.child >= 0 || nd.each >= 0
		nd.ends = nd.leaf >= 0 || nd.each >= 0
		nd.kids = int32(len(s.kids))
		for c := nd.child; c >= 0; c = s.nodes[c].next {
			s.kids = append(s.kids, kid{head: keyHead(s.nodes[c].key), node: c, index: int32(s.nodes[c].index)})
		}
		nd.kidsEnd = int32(len(s.kids))
	}
	s.ok = true
	return true
}

// add puts path number s.npaths into the trie; false when it is not a
// path json_get answers.
func (s *Scratch) add(path []byte, steps *int) bool {
	p := int32(s.npaths)
	// Check the whole path first, so an unsupported one adds no nodes.
	if len(path) == 0 {
		return false
	}
	hashes, empty := 0, true
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '\\':
			if i++; i == len(path) {
				return false // a trailing '\\' escapes nothing
			}
			empty = false
		case '.':
			if empty {
				return false
			}
			empty = true
		case '#':
			if !empty || (i+1 < len(path) && path[i+1] != '.') {
				return false // '#' inside a component
			}
			hashes++
			empty = false
		case '*', '?', '|', '@', '!', '[', ']', '{', '}':
			return false
		default:
			empty = false
		}
	}
	if empty || hashes > 1 {
		return false
	}
	cur, inEach := int32(0), int32(-1)
	for len(path) > 0 {
		*steps++
		var comp []byte
		comp, path = s.component(path)
		if len(comp) == 1 && comp[0] == '#' && !s.lastEscaped {
			cur = s.eachChild(cur)
			inEach = s.nodes[cur].group
			continue
		}
		if isUint(comp) && (s.lastEscaped || (len(comp) > 1 && comp[0] == '0')) {
			// gjson reads `\1` and "01" as keys "1" and "01" in an object
			// but as no index and index 1 in an array: one node cannot be
			// both.
			return false
		}
		cur = s.keyChild(cur, comp)
	}
	nd := &s.nodes[cur]
	if inEach < 0 {
		if nd.leaf >= 0 {
			s.alias[p] = nd.leaf
			return true
		}
		nd.leaf = p
		return true
	}
	gr := &s.groups[inEach]
	if nd.slot >= 0 {
		s.alias[p] = gr.paths[nd.slot]
		return true
	}
	nd.slot = gr.stride
	gr.stride++
	gr.paths = append(gr.paths, p)
	gr.slots = append(gr.slots, cur)
	return true
}

// component splits off the first component of path, unescaped.
func (s *Scratch) component(path []byte) (comp, rest []byte) {
	s.lastEscaped = false
	i := 0
	for i < len(path) && path[i] != '.' && path[i] != '\\' {
		i++
	}
	if i == len(path) || path[i] == '.' {
		if i < len(path) {
			return path[:i], path[i+1:]
		}
		return path, nil
	}
	s.lastEscaped = true
	start := len(s.keys)
	for i = 0; i < len(path) && path[i] != '.'; i++ {
		if path[i] == '\\' && i+1 < len(path) {
			i++
		}
		s.keys = append(s.keys, path[i])
	}
	comp = s.keys[start:len(s.keys):len(s.keys)]
	if i < len(path) {
		return comp, path[i+1:]
	}
	return comp, nil
}

func (s *Scratch) newNode(parent int32, key []byte, index int) int32 {
	s.nodes = append(s.nodes, node{key: key, index: index, child: -1, next: -1, each: -1, leaf: -1, slot: -1, group: -1})
	n := int32(len(s.nodes) - 1)
	return n
}

// keyChild returns the child of cur for an object key or array index
// component, adding it when new.
func (s *Scratch) keyChild(cur int32, comp []byte) int32 {
	for c := s.nodes[cur].child; c >= 0; c = s.nodes[c].next {
		if bytes.Equal(s.nodes[c].key, comp) {
			return c
		}
	}
	n := s.newNode(cur, comp, parseIndex(comp))
	s.nodes[n].next = s.nodes[cur].child
	s.nodes[cur].child = n
	return n
}

// eachChild returns the '#' child of cur, adding it (and its group) when new.
func (s *Scratch) eachChild(cur int32) int32 {
	if e := s.nodes[cur].each; e >= 0 {
		return e
	}
	n := s.newNode(cur, nil, -1)
	s.nodes[cur].each = n
	// Reuse an earlier group's slices: a caller alternating between path
	// lists compiles on every call, and must still not allocate.
	if len(s.groups) < cap(s.groups) {
		s.groups = s.groups[:len(s.groups)+1]
		g := &s.groups[len(s.groups)-1]
		*g = group{node: n, paths: g.paths[:0], slots: g.slots[:0], under: g.under[:0]}
	} else {
		s.groups = append(s.groups, group{node: n})
	}
	s.nodes[n].group = int32(len(s.groups) - 1)
	return n
}

func (s *Scratch) parent(n int32) int32 {
	for i := range s.nodes {
		if s.nodes[i].each == n {
			return int32(i)
		}
		for c := s.nodes[i].child; c >= 0; c = s.nodes[c].next {
			if c == n {
				return int32(i)
			}
		}
	}
	return -1
}

// inside reports whether node n is in the subtree of node root.
func (s *Scratch) inside(n, root int32) bool {
	if n == root {
		return true
	}
	for c := s.nodes[root].child; c >= 0; c = s.nodes[c].next {
		if s.inside(n, c) {
			return true
		}
	}
	if e := s.nodes[root].each; e >= 0 {
		return s.inside(n, e)
	}
	return false
}

func (s *Scratch) collect(n int32, gr *group) {
	gr.under = append(gr.under, n)
	for c := s.nodes[n].child; c >= 0; c = s.nodes[c].next {
		s.collect(c, gr)
	}
}

// keyHead packs a key's first 8 bytes (all of a shorter key's, the rest
// 0) into a uint64: with the length, it decides most comparisons in one
// step. It may load bytes past the key's end, within the slice's capacity
// (a key in the document is followed by its closing quote and more), and
// masks them off.
func keyHead(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.LittleEndian.Uint64(k)
	}
	if cap(k) >= 8 {
		return binary.LittleEndian.Uint64(k[:8]) & (1<<(8*uint(len(k))&63) - 1)
	}
	var h uint64
	for i := len(k) - 1; i >= 0; i-- {
		h = h<<8 | uint64(k[i])
	}
	return h
}

func isUint(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseIndex reads an array index as gjson does (leading zeros allowed);
// -1 when comp is not one, and an index no array reaches when it overflows.
func parseIndex(comp []byte) int {
	if !isUint(comp) {
		return -1
	}
	n := 0
	for _, c := range comp {
		if n > (math.MaxInt32-9)/10 {
			return math.MaxInt32
		}
		n = n*10 + int(c-'0')
	}
	return n
}
