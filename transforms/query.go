package transforms

import (
	"bytes"

	"github.com/hookgate/hookgate/delivery"
)

// Query strings are handled on raw bytes with reused buffers, so query_get
// and set_query on the event allocate nothing. Decoding follows
// application/x-www-form-urlencoded ('+' is a space), as
// delivery.AppendUnescape does for the default deliveries too; encoding
// escapes everything but unreserved characters, as url.QueryEscape does.

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
		scratch = delivery.AppendUnescape(scratch[:0], k)
		if bytes.Equal(scratch, name) {
			return delivery.AppendUnescape(scratch[:0], v), true
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
		scratch = delivery.AppendUnescape(scratch[:0], k)
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
