package gateway

import (
	"bytes"

	"github.com/hookgate/hookgate/delivery"
)

// forwardable says whether an incoming header goes on to targets. Hop-by-
// hop headers belong to the sender's connection; Host and Content-Length
// are the target's; credentials the sender gave us are not the target's
// business (targets get their own auth from config); Accept-Encoding is
// ours to negotiate.
func forwardable(k []byte) bool {
	switch len(k) {
	case 2:
		return !delivery.EqualFold(k, []byte("te"))
	case 4:
		return !delivery.EqualFold(k, []byte("host"))
	case 6:
		return !delivery.EqualFold(k, []byte("cookie")) && !delivery.EqualFold(k, []byte("expect"))
	case 7:
		return !delivery.EqualFold(k, []byte("upgrade")) && !delivery.EqualFold(k, []byte("trailer"))
	case 10:
		return !delivery.EqualFold(k, []byte("connection")) && !delivery.EqualFold(k, []byte("keep-alive"))
	case 13:
		return !delivery.EqualFold(k, []byte("authorization"))
	case 14:
		return !delivery.EqualFold(k, []byte("content-length"))
	case 15:
		// The target's answer goes back as is, with only its Content-Type:
		// a compressed answer would reach the sender undecodable.
		return !delivery.EqualFold(k, []byte("accept-encoding"))
	case 16:
		return !delivery.EqualFold(k, []byte("proxy-connection"))
	case 17:
		return !delivery.EqualFold(k, []byte("transfer-encoding"))
	case 18:
		return !delivery.EqualFold(k, []byte("proxy-authenticate"))
	case 19:
		return !delivery.EqualFold(k, []byte("proxy-authorization"))
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
