package transforms

import "bytes"

// Query strings are handled on raw bytes with reused buffers, so query_get
// and set_query on the event allocate nothing. Decoding follows
// application/x-www-form-urlencoded ('+' is a space); encoding escapes
// everything but unreserved characters, as url.QueryEscape does.

// appendUnescape appends the decoded form of s; a malformed escape is kept
// as is.
func appendUnescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// appendEscape appends s escaped for a query component.
func appendEscape(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// nextPair splits the first key=value pair off raw.
func nextPair(raw []byte) (key, val, rest []byte) {
	pair := raw
	if i := bytes.IndexByte(raw, '&'); i >= 0 {
		pair, rest = raw[:i], raw[i+1:]
	}
	key = pair
	if i := bytes.IndexByte(pair, '='); i >= 0 {
		key, val = pair[:i], pair[i+1:]
	}
	return key, val, rest
}

// queryGet appends the decoded value of the first parameter named name to
// scratch and returns it; ok is false when there is none.
func queryGet(scratch, raw, name []byte) (val []byte, ok bool) {
	for len(raw) > 0 {
		var k, v []byte
		k, v, raw = nextPair(raw)
		scratch = appendUnescape(scratch[:0], k)
		if bytes.Equal(scratch, name) {
			return appendUnescape(scratch[:0], v), true
		}
	}
	return scratch[:0], false
}

// querySet appends to dst the raw query with every parameter named name
// removed and, unless del, name=value added at the place of the first one
// (or at the end).
func querySet(dst, scratch, raw, name, value []byte, del bool) ([]byte, []byte) {
	dst = dst[:0]
	placed := del
	add := func() {
		if len(dst) > 0 {
			dst = append(dst, '&')
		}
		dst = appendEscape(dst, name)
		dst = append(dst, '=')
		dst = appendEscape(dst, value)
		placed = true
	}
	for len(raw) > 0 {
		start := raw
		var k []byte
		k, _, raw = nextPair(raw)
		scratch = appendUnescape(scratch[:0], k)
		if bytes.Equal(scratch, name) {
			if !placed {
				add()
			}
			continue
		}
		pair := start[:len(start)-len(raw)]
		if len(raw) > 0 || (len(pair) > 0 && pair[len(pair)-1] == '&') {
			pair = pair[:len(pair)-1]
		}
		if len(pair) == 0 {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, pair...)
	}
	if !placed {
		add()
	}
	return dst, scratch
}
