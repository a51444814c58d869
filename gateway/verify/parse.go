package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"

	"github.com/hookgate/hookgate/delivery"
)

// The parsers below read attacker-controlled header values. They slice
// the input, never copy it except into a caller's fixed buffer, never
// allocate, and are fuzzed (fuzz_test.go).

// parseHMACHeader returns the encoded signature after prefix.
func parseHMACHeader(h, prefix []byte) ([]byte, bool) {
	enc, ok := cutPrefix(h, prefix)
	if !ok {
		return nil, false
	}
	enc = trimSpace(enc)
	return enc, len(enc) > 0
}

// parseStripeHeader reads "t=<unix>,v1=<hex>,v1=<hex>,v0=...". It returns
// the timestamp as written and the number of v1 entries; ok is false
// unless there is exactly one t. Unknown keys (v0, future schemes) and
// items without '=' are skipped, as Stripe's own libraries do.
func parseStripeHeader(h []byte) (ts []byte, nsig int, ok bool) {
	nt := 0
	for rest := h; len(rest) > 0; {
		var k, val []byte
		k, val, rest = nextStripeItem(rest)
		switch string(k) {
		case "t":
			ts = val
			nt++
		case "v1":
			nsig++
		}
	}
	return ts, nsig, nt == 1 && len(ts) > 0
}

// nextStripeItem splits the first "key=value" item off a comma-separated
// list, both parts trimmed of spaces. An item without '=' has a nil key.
func nextStripeItem(h []byte) (k, val, rest []byte) {
	item := h
	if i := bytes.IndexByte(h, ','); i >= 0 {
		item, rest = h[:i], h[i+1:]
	}
	i := bytes.IndexByte(item, '=')
	if i < 0 {
		return nil, nil, rest
	}
	return trimSpace(item[:i]), trimSpace(item[i+1:]), rest
}

// nextStandardSignature splits the first entry off a space-separated
// webhook-signature list and returns its base64 when it is "v1,<base64>";
// nil for any other version (v1a is asymmetric: not ours to check).
func nextStandardSignature(h []byte) (enc, rest []byte) {
	item := h
	if i := bytes.IndexByte(h, ' '); i >= 0 {
		item, rest = h[:i], h[i+1:]
	}
	if len(item) > 3 && item[0] == 'v' && item[1] == '1' && item[2] == ',' {
		return item[3:], rest
	}
	return nil, rest
}

// parseBasic decodes "Basic <base64(user:pass)>" into buf and splits it.
// Credentials longer than buf are refused unread: no sender needs them.
func parseBasic(buf, h []byte) (user, pass []byte, err error) {
	sp := bytes.IndexByte(h, ' ')
	if sp < 0 || !bytes.EqualFold(h[:sp], []byte("basic")) {
		return nil, nil, ErrMalformedHeader
	}
	enc := trimSpace(h[sp+1:])
	if len(enc) == 0 {
		return nil, nil, ErrMalformedHeader
	}
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return nil, nil, ErrBadCredentials
	}
	n, derr := base64.StdEncoding.Decode(buf, enc)
	if derr != nil {
		return nil, nil, ErrMalformedHeader
	}
	cred := buf[:n]
	i := bytes.IndexByte(cred, ':')
	if i < 0 {
		return nil, nil, ErrMalformedHeader
	}
	return cred[:i], cred[i+1:], nil
}

// queryValue finds the first name=value in a raw query string and
// percent-decodes the value into buf. An absent or empty value is
// ErrMissingCredentials; one longer than buf is ErrBadCredentials.
func queryValue(buf, q, name []byte) ([]byte, error) {
	for len(q) > 0 {
		var k, val []byte
		k, val, q = delivery.NextPair(q)
		if !bytes.Equal(k, name) {
			continue
		}
		if len(val) == 0 {
			return nil, ErrMissingCredentials
		}
		return unescape(buf, val)
	}
	return nil, ErrMissingCredentials
}

// unescape decodes a query value ('+' is a space, %XX a byte) into buf.
func unescape(buf, s []byte) ([]byte, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		if n == len(buf) {
			return nil, ErrBadCredentials
		}
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) {
				return nil, ErrMalformedHeader
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, ErrMalformedHeader
			}
			c = hi<<4 | lo
			i += 2
		}
		buf[n] = c
		n++
	}
	return buf[:n], nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeHex decodes exactly size bytes of hex (either case) into dst.
func decodeHex(dst, src []byte, size int) ([]byte, bool) {
	if len(src) != 2*size || size > len(dst) {
		return nil, false
	}
	if _, err := hex.Decode(dst, src); err != nil {
		return nil, false
	}
	return dst[:size], true
}

// decodeBase64 decodes exactly size bytes of standard base64, padded or
// not, into dst.
func decodeBase64(dst, src []byte, size int) ([]byte, bool) {
	enc := base64.StdEncoding
	if len(src)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	if len(src) == 0 || enc.DecodedLen(len(src)) > len(dst) {
		return nil, false
	}
	n, err := enc.Decode(dst, src)
	if err != nil || n != size {
		return nil, false
	}
	return dst[:n], true
}

// parseUnix reads a Unix time in seconds: 1 to 12 ASCII digits, nothing
// else (no sign, no spaces, no fraction).
func parseUnix(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	var t int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		t = t*10 + int64(c-'0')
	}
	return t, true
}

func cutPrefix(b, prefix []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, prefix) {
		return nil, false
	}
	return b[len(prefix):], true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
