package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"time"
)

// Request is what Verify needs of an incoming request. Nothing in it is
// kept past the call.
type Request struct {
	Method   []byte     // not used by the current types; here so a type may sign it
	RawQuery []byte     // the query string without '?', as received
	Header   Header     // the request's headers; fasthttp: &ctx.Request.Header
	Body     []byte     // the raw body, exactly as received
	RemoteIP netip.Addr // the sender's address; see the package Notes
}

// Header looks up the first value of a request header by name, case
// insensitively; nil or empty when absent. *fasthttp.RequestHeader is one.
//
// An interface and not a func: a method value such as
// ctx.Request.Header.PeekBytes is a closure, and since the body Verify
// hashes escapes (hash.Hash is an interface), the whole Request does, so
// the closure would be allocated on every call. A pointer in an interface
// is not.
type Header interface {
	PeekBytes(name []byte) []byte
}

// peek looks a header up; a Request without headers has none.
func (r *Request) peek(name []byte) []byte {
	if r.Header == nil {
		return nil
	}
	return r.Header.PeekBytes(name)
}

// Reason codes: the whole of what a refused sender is told, and the label
// of the refusal counter.
const (
	ReasonMissingSignature   = "missing_signature"          // a signature header is absent or empty
	ReasonMissingCredentials = "missing_credentials"        // basic or token: no credentials sent
	ReasonMalformedHeader    = "malformed_header"           // a header is present but cannot be parsed
	ReasonBadSignature       = "bad_signature"              // no signature matches any active secret
	ReasonBadCredentials     = "bad_credentials"            // basic or token: no active secret matches
	ReasonTimestampTolerance = "timestamp_out_of_tolerance" // authentic, but signed too long ago or in the future
	ReasonIPNotAllowed       = "ip_not_allowed"             // the remote address is not in allow_ips
)

// Error is a refused request. Reason is one of the Reason codes; Advice
// is the sentence for the sender: what to check or do next. Neither says
// more, on purpose: no secret, no expected value, no configured header,
// nothing an attacker could tune against.
type Error struct {
	Reason string
	Advice string
}

func (e *Error) Error() string { return "verify: request refused: " + e.Reason }

// The errors Verify returns; shared values so a refusal allocates nothing.
// Compare with errors.Is, read the code with errors.As or e.Reason.
var (
	ErrMissingSignature = &Error{Reason: ReasonMissingSignature,
		Advice: "the request is not signed: configure the sender to sign its webhooks with the secret it shares with this route"}
	ErrMissingCredentials = &Error{Reason: ReasonMissingCredentials,
		Advice: "the request carries no credentials: configure the sender with the credentials this route's operator gave you"}
	ErrMalformedHeader = &Error{Reason: ReasonMalformedHeader,
		Advice: "a signature or credentials header could not be read: check that the sender uses the signing scheme this route expects (header, prefix, encoding)"}
	ErrBadSignature = &Error{Reason: ReasonBadSignature,
		Advice: "the signature does not match the body: check the secret the sender signs with, and that nothing between the sender and the gateway rewrites the body"}
	ErrBadCredentials = &Error{Reason: ReasonBadCredentials,
		Advice: "the credentials were not accepted: check the credentials the sender is configured with"}
	// Only a correctly signed request gets this far (the timestamp is
	// judged last), so the advice is about time, not secrets.
	ErrTimestampTolerance = &Error{Reason: ReasonTimestampTolerance,
		Advice: "the signature is valid but its timestamp is too far from the gateway's clock: if the sender's clock is off, correct it (NTP); a request replayed long after it was signed is refused the same way, so send a freshly signed one"}
	ErrIPNotAllowed = &Error{Reason: ReasonIPNotAllowed,
		Advice: "this route accepts requests only from the addresses its operator listed (allow_ips), and this one came from another: send from an allowed address, or ask the operator to add yours (behind a proxy, the gateway sees the proxy's address)"}
)

// Header names fixed by the schemes. Standard Webhooks has two families
// of names for the same three values: the spec's webhook-* and Svix's
// svix-*, which Svix sends unless the account is white-labelled.
var (
	hdrAuthorization    = []byte("Authorization")
	hdrWebhookID        = []byte("webhook-id")
	hdrWebhookTimestamp = []byte("webhook-timestamp")
	hdrWebhookSignature = []byte("webhook-signature")
	hdrSvixID           = []byte("svix-id")
	hdrSvixTimestamp    = []byte("svix-timestamp")
	hdrSvixSignature    = []byte("svix-signature")
	dot                 = []byte{'.'}
)

// Standard Webhooks message id headers, in the order verify picks a
// family: the first present decides, and the timestamp and signature are
// read from the same family. A dedupe keyed on the message id must read
// the same headers in the same order (config's default dedupe for
// standard-webhooks does), so the key is the id that was signed.
const (
	StandardIDHeader = "webhook-id"
	SvixIDHeader     = "svix-id"
)

// Verify checks req against the spec. now is the time timestamps are
// judged against. It returns nil or one of the Err values above.
func (v *Verifier) Verify(req Request, now time.Time) error {
	if len(v.nets) > 0 && !v.allowed(req.RemoteIP) {
		return ErrIPNotAllowed
	}
	switch v.typ {
	case TypeHMAC:
		return v.verifyHMAC(req)
	case TypeTimestamped:
		return v.verifyTimestamped(req, now)
	case TypeStandardWebhooks:
		return v.verifyStandard(req, now)
	case TypeBasic:
		return v.verifyBasic(req)
	case TypeToken:
		return v.verifyToken(req)
	}
	return nil
}

// AllowedIP reports whether ip passes allow_ips (true when there is no
// list), so ingest can refuse a sender before reading its body. Verify
// checks it again; the check is cheap.
func (v *Verifier) AllowedIP(ip netip.Addr) bool {
	return len(v.nets) == 0 || v.allowed(ip)
}

// Credential names where this verifier's shared secret travels: the
// header (basic: "Authorization"; token: its header) or the query
// parameter (token). Both empty for signatures, which are no secret.
// Ingest should not forward these to targets: they are the sender's
// credentials for hookgate, not the target's business.
func (v *Verifier) Credential() (header, query string) {
	switch v.typ {
	case TypeBasic:
		return string(hdrAuthorization), ""
	case TypeToken:
		return string(v.header), string(v.query)
	}
	return "", ""
}

// Type returns the spec's type.
func (v *Verifier) Type() string { return v.typ }

func (v *Verifier) allowed(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range v.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (v *Verifier) verifyHMAC(req Request) error {
	h := req.peek(v.header)
	if len(h) == 0 {
		return ErrMissingSignature
	}
	enc, ok := parseHMACHeader(h, v.prefix)
	if !ok {
		return ErrMalformedHeader
	}
	sc := v.pool.Get().(*scratch)
	defer v.pool.Put(sc)
	sig, ok := v.decode(sc.sig[:], enc)
	if !ok {
		return ErrMalformedHeader
	}
	match := 0
	for _, m := range sc.macs {
		m.Reset()
		m.Write(req.Body)
		match |= subtle.ConstantTimeCompare(m.Sum(sc.sum[:0]), sig)
	}
	if match == 0 {
		return ErrBadSignature
	}
	return nil
}

// decode decodes an hmac signature into dst and reports whether it is a
// well-formed signature of the verifier's algorithm.
func (v *Verifier) decode(dst, enc []byte) ([]byte, bool) {
	if v.hexEnc {
		return decodeHex(dst, enc, v.macSize)
	}
	return decodeBase64(dst, enc, v.macSize)
}

func (v *Verifier) verifyTimestamped(req Request, now time.Time) error {
	h := req.peek(v.header)
	if len(h) == 0 {
		return ErrMissingSignature
	}
	ts, nsig, ok := parseStripeHeader(h)
	if !ok || nsig == 0 {
		return ErrMalformedHeader
	}
	t, ok := parseUnix(ts)
	if !ok {
		return ErrMalformedHeader
	}
	sc := v.pool.Get().(*scratch)
	defer v.pool.Put(sc)
	sums := v.sums(sc, ts, nil, req.Body)
	// Every v1 against every secret, all the way through: the time taken
	// must not say which secret or which signature came close.
	valid, match := 0, 0
	for rest := h; len(rest) > 0; {
		var k, enc []byte
		k, enc, rest = nextStripeItem(rest)
		if string(k) != "v1" {
			continue
		}
		sig, ok := decodeHex(sc.sig[:], enc, v.macSize)
		if !ok {
			continue
		}
		valid++
		match |= v.matchSum(sums, sig)
	}
	return v.verdict(valid, match, t, now)
}

func (v *Verifier) verifyStandard(req Request, now time.Time) error {
	// The id header picks the family, never a mix: a signature is only
	// ever checked against the id of its own family, and a webhook-id
	// added beside a valid svix-* set makes it fail rather than become
	// an unsigned dedupe key.
	id, ts, sigs := req.peek(hdrWebhookID), req.peek(hdrWebhookTimestamp), req.peek(hdrWebhookSignature)
	if len(id) == 0 {
		id, ts, sigs = req.peek(hdrSvixID), req.peek(hdrSvixTimestamp), req.peek(hdrSvixSignature)
	}
	if len(id) == 0 || len(ts) == 0 || len(sigs) == 0 {
		return ErrMissingSignature
	}
	t, ok := parseUnix(ts)
	if !ok {
		return ErrMalformedHeader
	}
	sc := v.pool.Get().(*scratch)
	defer v.pool.Put(sc)
	sums := v.sums(sc, id, ts, req.Body)
	valid, match := 0, 0
	for rest := sigs; len(rest) > 0; {
		var enc []byte
		enc, rest = nextStandardSignature(rest)
		sig, ok := decodeBase64(sc.sig[:], enc, v.macSize)
		if !ok {
			continue
		}
		valid++
		match |= v.matchSum(sums, sig)
	}
	return v.verdict(valid, match, t, now)
}

// sums computes, for every secret, the MAC of the signed content: a "." b
// "." body, or a "." body when b is nil. The result holds one MAC after
// the other, macSize bytes each.
func (v *Verifier) sums(sc *scratch, a, b, body []byte) []byte {
	out := sc.sums[:0]
	for _, m := range sc.macs {
		m.Reset()
		m.Write(a)
		m.Write(dot)
		if b != nil {
			m.Write(b)
			m.Write(dot)
		}
		m.Write(body)
		out = m.Sum(out)
	}
	return out
}

// matchSum is 1 when sig equals one of the MACs in sums; it compares
// with all of them whatever the answer.
func (v *Verifier) matchSum(sums, sig []byte) int {
	match := 0
	for i := 0; i+v.macSize <= len(sums); i += v.macSize {
		match |= subtle.ConstantTimeCompare(sums[i:i+v.macSize], sig)
	}
	return match
}

// verdict judges a timestamped signature header: valid counts the
// signatures that parsed, match is non-zero when one of them matched a
// secret. The timestamp is checked last, so only a genuine sender ever
// learns that its clock is off.
func (v *Verifier) verdict(valid, match int, t int64, now time.Time) error {
	if valid == 0 {
		return ErrMalformedHeader
	}
	if match == 0 {
		return ErrBadSignature
	}
	return v.checkTime(t, now)
}

// checkTime refuses a timestamp more than the tolerance away from now,
// either way: an old one may be a replay, a future one a way to make a
// captured request last longer.
func (v *Verifier) checkTime(t int64, now time.Time) error {
	d := now.Unix() - t
	if d > v.tol || d < -v.tol {
		return ErrTimestampTolerance
	}
	return nil
}

func (v *Verifier) verifyBasic(req Request) error {
	h := req.peek(hdrAuthorization)
	if len(h) == 0 {
		return ErrMissingCredentials
	}
	sc := v.pool.Get().(*scratch)
	defer v.pool.Put(sc)
	user, pass, err := parseBasic(sc.buf[:], h)
	if err != nil {
		return err
	}
	uh, ph := sha256.Sum256(user), sha256.Sum256(pass)
	if subtle.ConstantTimeCompare(uh[:], v.user[:])&v.matchDigest(&ph) == 0 {
		return ErrBadCredentials
	}
	return nil
}

func (v *Verifier) verifyToken(req Request) error {
	var tok []byte
	if len(v.query) > 0 {
		sc := v.pool.Get().(*scratch)
		defer v.pool.Put(sc)
		var err error
		if tok, err = queryValue(sc.buf[:], req.RawQuery, v.query); err != nil {
			return err
		}
	} else {
		h := req.peek(v.header)
		if len(h) == 0 {
			return ErrMissingCredentials
		}
		var ok bool
		if tok, ok = cutPrefix(h, v.prefix); !ok {
			return ErrMalformedHeader
		}
	}
	d := sha256.Sum256(tok)
	if v.matchDigest(&d) == 0 {
		return ErrBadCredentials
	}
	return nil
}

// matchDigest is 1 when d equals one of the accepted digests; it looks at
// all of them whatever the answer.
func (v *Verifier) matchDigest(d *[sha256.Size]byte) int {
	match := 0
	for i := range v.digests {
		match |= subtle.ConstantTimeCompare(d[:], v.digests[i][:])
	}
	return match
}
