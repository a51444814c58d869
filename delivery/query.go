package delivery

import "bytes"

// ParseQuery appends the parameters of the raw query string q (without
// '?') to dst, decoded as application/x-www-form-urlencoded ('+' is a
// space), in order and with repeats. A pair with neither key nor value
// ("&&", "=") is skipped. The buffers of entries past len(dst) are reused.
func ParseQuery(dst []KV, q []byte) []KV {
	for len(q) > 0 {
		pair := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		k, v := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
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
