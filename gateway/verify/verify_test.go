package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// headers is a request's headers for tests; PeekBytes does not allocate, so
// the same type serves the allocation tests.
type headers []hdr

type hdr struct {
	k string
	v []byte
}

func h(kv ...string) *headers {
	var hs headers
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, hdr{kv[i], []byte(kv[i+1])})
	}
	return &hs
}

func (hs *headers) PeekBytes(name []byte) []byte {
	if hs == nil {
		return nil
	}
	for _, x := range *hs {
		if foldEq(x.k, name) {
			return x.v
		}
	}
	return nil
}

func foldEq(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range b {
		x, y := s[i], b[i]
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

func mac(newHash func() hash.Hash, key string, parts ...string) []byte {
	m := hmac.New(newHash, []byte(key))
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func mustNew(t *testing.T, spec Spec) *Verifier {
	t.Helper()
	v, err := New(spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// reason is "" for nil, the Reason of an *Error, or fails the test.
func reason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *verify.Error", err)
	}
	return e.Reason
}

var localhost = netip.MustParseAddr("127.0.0.1")

// TestDocExamples checks the examples published by the senders
// themselves, so the schemes match theirs and not only our reading of it.
func TestDocExamples(t *testing.T) {
	t.Run("github", func(t *testing.T) {
		// docs.github.com, "Validating webhook deliveries": testing the
		// signature verification.
		v := mustNew(t, Spec{Type: TypeHMAC, Secrets: []string{"It's a Secret to Everybody"}, Header: "X-Hub-Signature-256", Prefix: "sha256="})
		req := Request{
			Header: h("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
			Body:   []byte("Hello, World!"),
		}
		if got := reason(t, v.Verify(req, time.Now())); got != "" {
			t.Fatalf("GitHub's example refused: %s", got)
		}
	})
	t.Run("standard-webhooks", func(t *testing.T) {
		// The Standard Webhooks specification's example.
		v := mustNew(t, Spec{Type: TypeStandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
		req := Request{
			Header: h("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
				"webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			Body: []byte(`{"test": 2432232314}`),
		}
		if got := reason(t, v.Verify(req, time.Unix(1614265330, 0))); got != "" {
			t.Fatalf("the Standard Webhooks example refused: %s", got)
		}
		if got := reason(t, v.Verify(req, time.Unix(1614265330+301, 0))); got != ReasonTimestampTolerance {
			t.Fatalf("the example 301s later: got %q, want %q", got, ReasonTimestampTolerance)
		}
	})
}

func TestHMAC(t *testing.T) {
	const oldSecret, newSecret = "old-secret-1", "new-secret-2"
	body := `{"event":"entry_submitted","serial":42}`
	hexSig := func(nh func() hash.Hash, key, b string) string { return hex.EncodeToString(mac(nh, key, b)) }
	b64Sig := func(nh func() hash.Hash, key, b string) string {
		return base64.StdEncoding.EncodeToString(mac(nh, key, b))
	}
	github := Spec{Type: TypeHMAC, Secrets: []string{newSecret, oldSecret}, Header: "X-Hub-Signature-256", Prefix: "sha256="}
	shopify := Spec{Type: TypeHMAC, Secrets: []string{newSecret, oldSecret}, Header: "X-Shopify-Hmac-Sha256", Encoding: EncodingBase64}
	sha1Spec := Spec{Type: TypeHMAC, Secrets: []string{newSecret}, Header: "X-Hub-Signature", Prefix: "sha1=", Algorithm: AlgorithmSHA1}
	sha512Spec := Spec{Type: TypeHMAC, Secrets: []string{newSecret}, Algorithm: AlgorithmSHA512, Encoding: EncodingBase64}
	tests := []struct {
		name    string
		spec    Spec
		headers *headers
		body    string
		want    string
	}{
		{"github new secret", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha256.New, newSecret, body)), body, ""},
		{"github old secret during rotation", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha256.New, oldSecret, body)), body, ""},
		{"github upper-case hex", github, h("x-hub-signature-256", "sha256="+hexUpper(mac(sha256.New, newSecret, body))), body, ""},
		{"github tampered body", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha256.New, newSecret, body)), body + " ", ReasonBadSignature},
		{"github wrong secret", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha256.New, "guess", body)), body, ReasonBadSignature},
		{"github sha1 digest in the sha256 header", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha1.New, newSecret, body)), body, ReasonMalformedHeader},
		{"github missing header", github, h("X-Other", "x"), body, ReasonMissingSignature},
		{"github empty header", github, h("X-Hub-Signature-256", ""), body, ReasonMissingSignature},
		{"github without prefix", github, h("X-Hub-Signature-256", hexSig(sha256.New, newSecret, body)), body, ReasonMalformedHeader},
		{"github prefix only", github, h("X-Hub-Signature-256", "sha256="), body, ReasonMalformedHeader},
		{"github not hex", github, h("X-Hub-Signature-256", "sha256="+string(make64('z'))), body, ReasonMalformedHeader},
		{"shopify base64", shopify, h("X-Shopify-Hmac-Sha256", b64Sig(sha256.New, newSecret, body)), body, ""},
		{"shopify old secret", shopify, h("X-Shopify-Hmac-Sha256", b64Sig(sha256.New, oldSecret, body)), body, ""},
		{"shopify tampered body", shopify, h("X-Shopify-Hmac-Sha256", b64Sig(sha256.New, newSecret, body)), "{}", ReasonBadSignature},
		{"shopify hex instead of base64", shopify, h("X-Shopify-Hmac-Sha256", hexSig(sha256.New, newSecret, body)), body, ReasonMalformedHeader},
		{"shopify not base64", shopify, h("X-Shopify-Hmac-Sha256", "!!!!"), body, ReasonMalformedHeader},
		{"sha1", sha1Spec, h("X-Hub-Signature", "sha1="+hexSig(sha1.New, newSecret, body)), body, ""},
		{"sha1 wrong secret", sha1Spec, h("X-Hub-Signature", "sha1="+hexSig(sha1.New, oldSecret, body)), body, ReasonBadSignature},
		{"sha512 base64 default header", sha512Spec, h(DefaultHMACHeader, b64Sig(sha512.New, newSecret, body)), body, ""},
		{"sha512 tampered", sha512Spec, h(DefaultHMACHeader, b64Sig(sha512.New, newSecret, body)), body[1:], ReasonBadSignature},
		{"sha512 truncated", sha512Spec, h(DefaultHMACHeader, b64Sig(sha256.New, newSecret, body)), body, ReasonMalformedHeader},
		{"empty body signed", github, h("X-Hub-Signature-256", "sha256="+hexSig(sha256.New, newSecret, "")), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			got := reason(t, v.Verify(Request{Header: tt.headers, Body: []byte(tt.body), RemoteIP: localhost}, time.Now()))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func hexUpper(b []byte) string {
	s := []byte(hex.EncodeToString(b))
	for i, c := range s {
		if 'a' <= c && c <= 'f' {
			s[i] = c - 'a' + 'A'
		}
	}
	return string(s)
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestTimestamped(t *testing.T) {
	const oldSecret, newSecret = "whsec_old_abc", "whsec_new_xyz"
	now := time.Unix(1_700_000_000, 0)
	body := `{"id":"evt_1","type":"invoice.paid"}`
	sig := func(key string, ts int64, b string) string {
		return hex.EncodeToString(mac(sha256.New, key, strconv.FormatInt(ts, 10), ".", b))
	}
	ts := now.Unix()
	hdr := func(s string) *headers { return h("Stripe-Signature", s) }
	tstr := strconv.FormatInt(ts, 10)
	spec := Spec{Type: TypeTimestamped, Secrets: []string{newSecret, oldSecret}}
	tests := []struct {
		name    string
		spec    Spec
		headers *headers
		body    string
		want    string
	}{
		{"valid", spec, hdr("t=" + tstr + ",v1=" + sig(newSecret, ts, body)), body, ""},
		{"old secret during rotation", spec, hdr("t=" + tstr + ",v1=" + sig(oldSecret, ts, body)), body, ""},
		{"second v1 matches", spec, hdr("t=" + tstr + ",v1=" + sig("other", ts, body) + ",v1=" + sig(newSecret, ts, body)), body, ""},
		{"v0 and spaces ignored", spec, hdr("t=" + tstr + ", v1=" + sig(newSecret, ts, body) + ", v0=" + sig("x", ts, body)), body, ""},
		{"tampered body", spec, hdr("t=" + tstr + ",v1=" + sig(newSecret, ts, body)), body + "\n", ReasonBadSignature},
		{"tampered timestamp", spec, hdr("t=" + strconv.FormatInt(ts+1, 10) + ",v1=" + sig(newSecret, ts, body)), body, ReasonBadSignature},
		{"wrong secret", spec, hdr("t=" + tstr + ",v1=" + sig("whsec_guess", ts, body)), body, ReasonBadSignature},
		{"v0 only", spec, hdr("t=" + tstr + ",v0=" + sig(newSecret, ts, body)), body, ReasonMalformedHeader},
		{"expired", spec, hdr("t=" + strconv.FormatInt(ts-301, 10) + ",v1=" + sig(newSecret, ts-301, body)), body, ReasonTimestampTolerance},
		{"at the tolerance edge", spec, hdr("t=" + strconv.FormatInt(ts-300, 10) + ",v1=" + sig(newSecret, ts-300, body)), body, ""},
		{"future", spec, hdr("t=" + strconv.FormatInt(ts+301, 10) + ",v1=" + sig(newSecret, ts+301, body)), body, ReasonTimestampTolerance},
		{"custom tolerance", Spec{Type: TypeTimestamped, Secrets: []string{newSecret}, Tolerance: 10 * time.Minute},
			hdr("t=" + strconv.FormatInt(ts-500, 10) + ",v1=" + sig(newSecret, ts-500, body)), body, ""},
		{"missing header", spec, h("X-Other", "1"), body, ReasonMissingSignature},
		{"no timestamp", spec, hdr("v1=" + sig(newSecret, ts, body)), body, ReasonMalformedHeader},
		{"two timestamps", spec, hdr("t=" + tstr + ",t=" + tstr + ",v1=" + sig(newSecret, ts, body)), body, ReasonMalformedHeader},
		{"timestamp not a number", spec, hdr("t=-" + tstr + ",v1=" + sig(newSecret, ts, body)), body, ReasonMalformedHeader},
		{"signature not hex", spec, hdr("t=" + tstr + ",v1=" + string(make64('g'))), body, ReasonMalformedHeader},
		{"garbage", spec, hdr(",,,=,"), body, ReasonMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			got := reason(t, v.Verify(Request{Header: tt.headers, Body: []byte(tt.body)}, now))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStandardWebhooks(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString(oldKey)
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString(newKey)
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	const id, body = "msg_2b3c4d", `{"type":"chat.closed"}`
	sig := func(key []byte, id, ts, b string) string {
		return "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), id, ".", ts, ".", b))
	}
	hdrs := func(id, ts, sig string) *headers {
		return h("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sig)
	}
	spec := Spec{Type: TypeStandardWebhooks, Secrets: []string{newSecret, oldSecret}}
	old := strconv.FormatInt(now.Unix()-301, 10)
	future := strconv.FormatInt(now.Unix()+301, 10)
	tests := []struct {
		name    string
		spec    Spec
		headers *headers
		body    string
		want    string
	}{
		{"valid", spec, hdrs(id, ts, sig(newKey, id, ts, body)), body, ""},
		{"old secret during rotation", spec, hdrs(id, ts, sig(oldKey, id, ts, body)), body, ""},
		{"secret without whsec_", Spec{Type: TypeStandardWebhooks, Secrets: []string{base64.StdEncoding.EncodeToString(newKey)}},
			hdrs(id, ts, sig(newKey, id, ts, body)), body, ""},
		{"several signatures, last matches", spec, hdrs(id, ts, "v1a,AAAA "+sig([]byte("x"), id, ts, body)+" "+sig(newKey, id, ts, body)), body, ""},
		{"tampered body", spec, hdrs(id, ts, sig(newKey, id, ts, body)), body + " ", ReasonBadSignature},
		{"tampered id", spec, hdrs("msg_other", ts, sig(newKey, id, ts, body)), body, ReasonBadSignature},
		{"wrong secret", spec, hdrs(id, ts, sig([]byte("not the key"), id, ts, body)), body, ReasonBadSignature},
		{"expired", spec, hdrs(id, old, sig(newKey, id, old, body)), body, ReasonTimestampTolerance},
		{"future", spec, hdrs(id, future, sig(newKey, id, future, body)), body, ReasonTimestampTolerance},
		{"missing id", spec, h("webhook-timestamp", ts, "webhook-signature", sig(newKey, id, ts, body)), body, ReasonMissingSignature},
		{"missing timestamp", spec, h("webhook-id", id, "webhook-signature", sig(newKey, id, ts, body)), body, ReasonMissingSignature},
		{"missing signature", spec, h("webhook-id", id, "webhook-timestamp", ts), body, ReasonMissingSignature},
		{"timestamp in milliseconds", spec, hdrs(id, ts+"000", sig(newKey, id, ts+"000", body)), body, ReasonMalformedHeader},
		{"timestamp not a number", spec, hdrs(id, "soon", sig(newKey, id, "soon", body)), body, ReasonMalformedHeader},
		{"only v1a signatures", spec, hdrs(id, ts, "v1a,"+base64.StdEncoding.EncodeToString(make64('a'))), body, ReasonMalformedHeader},
		{"signature not base64", spec, hdrs(id, ts, "v1,%%%%"), body, ReasonMalformedHeader},
		{"signature without version", spec, hdrs(id, ts, base64.StdEncoding.EncodeToString(mac(sha256.New, string(newKey), id, ".", ts, ".", body))), body, ReasonMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			got := reason(t, v.Verify(Request{Header: tt.headers, Body: []byte(tt.body)}, now))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
