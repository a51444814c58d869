package gateway

import "bytes"

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
