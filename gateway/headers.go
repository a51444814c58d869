package gateway

import "bytes"

// forwardable says whether an incoming header goes on to targets. Hop-by-
// hop headers belong to the sender's connection; Host and Content-Length
// are the target's; credentials the sender gave us are not the target's
// business (targets get their own auth from config); Accept-Encoding is
// ours to negotiate.
func forwardable(k []byte) bool {
	switch len(k) {
	case 2:
		return !equalFoldString(k, "te")
	case 4:
		return !equalFoldString(k, "host")
	case 6:
		return !equalFoldString(k, "cookie") && !equalFoldString(k, "expect")
	case 7:
		return !equalFoldString(k, "upgrade") && !equalFoldString(k, "trailer")
	case 10:
		return !equalFoldString(k, "connection") && !equalFoldString(k, "keep-alive")
	case 13:
		return !equalFoldString(k, "authorization")
	case 14:
		return !equalFoldString(k, "content-length")
	case 15:
		// The target's answer goes back as is, with only its Content-Type:
		// a compressed answer would reach the sender undecodable.
		return !equalFoldString(k, "accept-encoding")
	case 16:
		return !equalFoldString(k, "proxy-connection")
	case 17:
		return !equalFoldString(k, "transfer-encoding")
	case 18:
		return !equalFoldString(k, "proxy-authenticate")
	case 19:
		return !equalFoldString(k, "proxy-authorization")
	}
	return true
}

// appendQueryWithout appends the raw query q without its name=value
// pairs named name (compared as sent, as verify reads them).
func appendQueryWithout(dst, q, name []byte) []byte {
	for len(q) > 0 {
		pair := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		k := pair
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k = pair[:i]
		}
		if bytes.Equal(k, name) || len(pair) == 0 {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, pair...)
	}
	return dst
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func equalFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
