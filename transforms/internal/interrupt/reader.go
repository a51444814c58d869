package interrupt

import "fmt"

// reader decodes a bounded part of the input. Positions are absolute offsets
// into the whole input, so every error can name where it happened.
//
// The first error sticks: later reads return zero values and leave pos alone,
// and callers check r.err after a group of reads instead of after each one.
// Loops over vectors must also stop on r.err (see vec), or a huge count read
// from a hostile module would spin doing nothing.
type reader struct {
	b   []byte // the whole input
	pos int    // next byte to read
	end int    // reads stop here (the end of the current section or body)
	err error
	// oversize is set when a count or length exceeds the bytes left.
	// wazero v1.12 allocates such vectors and strings before reading them
	// (a 95-byte module claiming 143 million imports stalls it), so these
	// are refused even where other malformations are tolerated.
	oversize bool
}

func newReader(b []byte, pos, end int) *reader {
	return &reader{b: b, pos: pos, end: end}
}

func (r *reader) failf(at int, format string, args ...any) {
	if r.err == nil {
		r.err = &Error{Offset: at, Msg: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) done() bool { return r.err != nil || r.pos >= r.end }

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= r.end {
		r.failf(r.pos, "unexpected end of %s", what)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

// bytes returns the next n bytes, aliasing the input.
func (r *reader) bytes(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(r.end-r.pos) {
		r.failf(r.pos, "%s length %d exceeds the %d bytes left", what, n, r.end-r.pos)
		r.oversize = true
		return nil
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

func (r *reader) u32(what string) uint32 { return r.u32s(what, "") }

// u32s is u32 with the error context in two parts, joined only on an error
// (a concatenation on every call would allocate).
func (r *reader) u32s(what, suffix string) uint32 {
	if r.err != nil {
		return 0
	}
	if r.pos < r.end && r.b[r.pos] < 0x80 {
		r.pos++
		return uint32(r.b[r.pos-1])
	}
	v, n, msg := leb(r.b[r.pos:r.end], 32, false)
	if msg != "" {
		r.failf(r.pos, "%s%s: %s", what, suffix, msg)
		return 0
	}
	r.pos += n
	return uint32(v)
}

// s33 reads a signed 33-bit LEB128 (block types and heap types).
func (r *reader) s33(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n, msg := leb(r.b[r.pos:r.end], 33, true)
	if msg != "" {
		r.failf(r.pos, "%s: %s", what, msg)
		return 0
	}
	r.pos += n
	return int64(v)
}

// vec reads a vector length and refuses one that cannot fit in the bytes
// left (every element takes at least minSize bytes), so a hostile count can
// neither spin a loop nor size an allocation.
func (r *reader) vec(what string, minSize int) uint32 {
	at := r.pos
	n := r.u32s(what, " count")
	if r.err == nil && uint64(n)*uint64(minSize) > uint64(r.end-r.pos) {
		r.failf(at, "%s count %d exceeds the %d bytes left", what, n, r.end-r.pos)
		r.oversize = true
		return 0
	}
	return n
}

// name reads a length-prefixed string (its bytes are not checked: they are
// copied, never interpreted, except for comparisons with our own names).
func (r *reader) name(what string) []byte {
	n := r.u32s(what, " length")
	return r.bytes(uint64(n), what)
}

// leb decodes an LEB128 number of at most bits bits from b and returns it
// (sign-extended to 64 bits when signed), its encoded length, and a message
// when it is malformed. It follows the spec (and wazero): at most
// ceil(bits/7) bytes, and the unused bits of the last byte must be a sign
// (or zero) extension. The length is what matters for staying in step with
// wazero: continuation bits decide it, so both decoders agree on it for
// every number both accept.
func leb(b []byte, bits int, signed bool) (uint64, int, string) {
	maxLen := (bits + 6) / 7
	var v uint64
	shift := 0
	for i := 0; ; i++ {
		if i >= len(b) {
			return 0, 0, "truncated LEB128"
		}
		if i >= maxLen {
			return 0, 0, fmt.Sprintf("LEB128 longer than %d bytes", maxLen)
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		shift += 7
		if c&0x80 != 0 {
			continue
		}
		if i == maxLen-1 && shift > bits {
			// The bits of the last byte above the value's width.
			extra := shift - bits
			top := c & 0x7f >> (7 - extra)
			mask := byte(1)<<extra - 1
			if signed {
				// The unused bits must copy the sign bit (bit bits-1).
				sign := v >> (bits - 1) & 1
				if (sign == 0 && top != 0) || (sign == 1 && top != mask) {
					return 0, 0, fmt.Sprintf("LEB128 overflows %d bits", bits)
				}
			} else if top != 0 {
				return 0, 0, fmt.Sprintf("LEB128 overflows %d bits", bits)
			}
		}
		if signed && shift < 64 && c&0x40 != 0 {
			v |= ^uint64(0) << shift
		}
		if signed && bits < 64 {
			// Keep only bits..63 as the sign extension of the value.
			v = uint64(int64(v<<(64-bits)) >> (64 - bits))
		} else if !signed && bits < 64 {
			v &= 1<<bits - 1
		}
		return v, i + 1, ""
	}
}

// Encoders append to dst.

func appendU32(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func appendS32(dst []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

// u32Size is the length of v's LEB128 encoding.
func u32Size(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// s32Size is the length of v's signed LEB128 encoding.
func s32Size(v int32) int {
	n := 1
	for v < -64 || v > 63 {
		v >>= 7
		n++
	}
	return n
}

func appendName(dst []byte, s string) []byte {
	dst = appendU32(dst, uint32(len(s)))
	return append(dst, s...)
}

// appendSection appends a section with its size prefix.
func appendSection(dst []byte, id byte, content []byte) []byte {
	dst = append(dst, id)
	dst = appendU32(dst, uint32(len(content)))
	return append(dst, content...)
}
