package delivery

import "bytes"

// The query codec: every part of hookgate that reads, edits or writes a
// query string does it here, on raw bytes with the caller's buffers, so
// that the hot path allocates nothing and a value reads back the same
// wherever it is shown. Decoding is application/x-www-form-urlencoded
// ('+' is a space, %XX a byte, a malformed escape kept as is); encoding
// escapes everything but RFC 3986's unreserved characters and writes a
// space as '+', as url.QueryEscape does.

// NextPair splits the first key=value pair off the raw query q: key and
// value as sent (still escaped), and the rest after its '&'. A pair
// without '=' has a nil value.
func NextPair(q []byte) (key, value, rest []byte) {
	pair := q
	if i := bytes.IndexByte(q, '&'); i >= 0 {
		pair, rest = q[:i], q[i+1:]
	}
	key = pair
	if i := bytes.IndexByte(pair, '='); i >= 0 {
		key, value = pair[:i], pair[i+1:]
	}
	return key, value, rest
}

// nextRawPair is NextPair that also returns the pair as sent (without
// its '&'), for edits that keep the other pairs untouched.
func nextRawPair(q []byte) (pair, key, rest []byte) {
	key, _, rest = NextPair(q)
	pair = q[:len(q)-len(rest)]
	if len(pair) > 0 && pair[len(pair)-1] == '&' {
		pair = pair[:len(pair)-1]
	}
	return pair, key, rest
}

// ParseQuery appends the parameters of the raw query string q (without
// '?') to dst, decoded, in order and with repeats. A pair with neither key
// nor value ("&&", "=") is skipped. The buffers of entries past len(dst)
// are reused.
func ParseQuery(dst []KV, q []byte) []KV {
	for len(q) > 0 {
		var k, v []byte
		k, v, q = NextPair(q)
		if len(k) == 0 && len(v) == 0 {
			continue
		}
		n := len(dst)
		if n < cap(dst) {
			dst = dst[:n+1]
		} else {
			dst = append(dst, KV{})
		}
		dst[n].Key = AppendUnescape(dst[n].Key[:0], k)
		dst[n].Value = AppendUnescape(dst[n].Value[:0], v)
	}
	return dst
}

// QueryGet appends to scratch the decoded value of the first parameter of
// q whose decoded key is name, and returns it; ok is false when there is
// none.
func QueryGet(scratch, q, name []byte) (value []byte, ok bool) {
	for len(q) > 0 {
		var k, v []byte
		k, v, q = NextPair(q)
		scratch = AppendUnescape(scratch[:0], k)
		if bytes.Equal(scratch, name) {
			return AppendUnescape(scratch[:0], v), true
		}
	}
	return scratch[:0], false
}

// QuerySet writes into dst (from its start) the raw query q with every
// parameter whose decoded key is name removed and, unless del, name=value
// added, encoded, at the place of the first one (or at the end). Other
// pairs are kept as sent; empty ones are dropped. scratch is a buffer for
// decoding keys; both buffers are returned for reuse.
func QuerySet(dst, scratch, q, name, value []byte, del bool) ([]byte, []byte) {
	dst = dst[:0]
	placed := del
	for len(q) > 0 {
		var pair, k []byte
		pair, k, q = nextRawPair(q)
		scratch = AppendUnescape(scratch[:0], k)
		if bytes.Equal(scratch, name) {
			if !placed {
				dst = AppendPair(dst, 0, name, value)
				placed = true
			}
			continue
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
		dst = AppendPair(dst, 0, name, value)
	}
	return dst, scratch
}

// AppendPair appends name=value, both encoded, after an '&' when dst
// already holds a pair past start.
func AppendPair(dst []byte, start int, name, value []byte) []byte {
	if len(dst) > start {
		dst = append(dst, '&')
	}
	dst = AppendEscape(dst, name)
	dst = append(dst, '=')
	return AppendEscape(dst, value)
}

// AppendQueryWithout appends the raw query q without its pairs whose key,
// compared as sent (undecoded, as gateway/verify reads a credential), is
// name. Empty pairs are dropped.
func AppendQueryWithout(dst, q, name []byte) []byte {
	start := len(dst)
	for len(q) > 0 {
		var pair, k []byte
		pair, k, q = nextRawPair(q)
		if len(pair) == 0 || bytes.Equal(k, name) {
			continue
		}
		if len(dst) > start {
			dst = append(dst, '&')
		}
		dst = append(dst, pair...)
	}
	return dst
}

// AppendEscape appends s encoded as a query component.
func AppendEscape(dst, s []byte) []byte {
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

// AppendUnescape appends the decoded form of the query component s ('+'
// is a space, %XX a byte); a malformed escape is kept as is.
func AppendUnescape(dst, s []byte) []byte {
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
