package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"testing"
	"time"
)

// hotCase is one verifier and request for the allocation tests and the
// benchmarks, valid and forged.
type hotCase struct {
	name string
	v    *Verifier
	req  Request
	want string
}

func hotCases(tb testing.TB) []hotCase {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"event":"entry_submitted","entry":{"serial_number":1234567,"fields":{"nps":9}}}`)
	key := []byte("0123456789abcdef0123456789abcdef")
	must := func(s Spec) *Verifier {
		v, err := New(s)
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	ghSig := "sha256=" + hex.EncodeToString(mac(sha256.New, "new", string(body)))
	stripe := "t=" + ts + ",v1=" + hex.EncodeToString(mac(sha256.New, "whsec_new", ts, ".", string(body)))
	std := "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), "msg_1", ".", ts, ".", string(body)))
	hmacV := must(Spec{Type: TypeHMAC, Secrets: []string{"new", "old"}, Header: "X-Hub-Signature-256", Prefix: "sha256="})
	stripeV := must(Spec{Type: TypeTimestamped, Secrets: []string{"whsec_new", "whsec_old"}})
	stdV := must(Spec{Type: TypeStandardWebhooks, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString(key)}})
	basicV := must(Spec{Type: TypeBasic, Username: "u", Secrets: []string{"p1", "p2"}, AllowIPs: []string{"127.0.0.0/8"}})
	queryV := must(Spec{Type: TypeToken, Query: "apiToken", Secrets: []string{"t o k"}})
	return []hotCase{
		{"hmac valid", hmacV, Request{Header: h("X-Hub-Signature-256", ghSig), Body: body}, ""},
		{"hmac forged", hmacV, Request{Header: h("X-Hub-Signature-256", "sha256="+hex.EncodeToString(make([]byte, 32))), Body: body}, ReasonBadSignature},
		{"timestamped valid", stripeV, Request{Header: h("Stripe-Signature", stripe), Body: body}, ""},
		{"timestamped malformed", stripeV, Request{Header: h("Stripe-Signature", "t=x,v1=y"), Body: body}, ReasonMalformedHeader},
		{"standard valid", stdV, Request{Header: h("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", std), Body: body}, ""},
		{"standard valid, svix headers", stdV, Request{Header: h("svix-id", "msg_1", "svix-timestamp", ts, "svix-signature", std), Body: body}, ""},
		{"standard forged", stdV, Request{Header: h("webhook-id", "msg_2", "webhook-timestamp", ts, "webhook-signature", std), Body: body}, ReasonBadSignature},
		{"basic valid", basicV, Request{Header: h("Authorization", basicHeader("u", "p2")), RemoteIP: localhost}, ""},
		{"basic wrong", basicV, Request{Header: h("Authorization", basicHeader("u", "p3")), RemoteIP: localhost}, ReasonBadCredentials},
		{"token query valid", queryV, Request{Header: h(), RawQuery: []byte("cId=1&apiToken=t+o%20k")}, ""},
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, c := range hotCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.req.Body)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = c.v.Verify(c.req, now)
				}
			})
		})
	}
}
