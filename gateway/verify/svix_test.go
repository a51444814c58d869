package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
	"time"
)

// svixSign signs a message as the Standard Webhooks spec says (and as
// Svix does): base64 of HMAC-SHA256 over "id.timestamp.body", keyed with
// the bytes the base64 after "whsec_" decodes to.
func svixSign(secret, id string, ts int64, body string) string {
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestSvixHeaders: Svix sends the Standard Webhooks signature under its
// own header names (svix-id, svix-timestamp, svix-signature) unless the
// account is white-labelled. Both families verify; the family is the one
// whose id header is present (webhook-id first), and all three headers
// come from it: a signature is never checked against another family's id.
func TestSvixHeaders(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks spec's example secret
	const body = `{"type":"invoice.paid","data":{"id":"in_1"}}`
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	old := now.Unix() - 600
	v := mustNew(t, Spec{Type: TypeStandardWebhooks, Secrets: []string{secret}})
	sig := svixSign(secret, "msg_svix", now.Unix(), body)
	tests := []struct {
		name    string
		headers *headers
		want    string
	}{
		{"svix family", h("svix-id", "msg_svix", "svix-timestamp", ts, "svix-signature", sig), ""},
		{"svix family, capitalised", h("Svix-Id", "msg_svix", "Svix-Timestamp", ts, "Svix-Signature", sig), ""},
		{"webhook family still", h("webhook-id", "msg_svix", "webhook-timestamp", ts, "webhook-signature", sig), ""},
		{"svix tampered id", h("svix-id", "msg_other", "svix-timestamp", ts, "svix-signature", sig), ReasonBadSignature},
		{"svix old", h("svix-id", "msg_svix", "svix-timestamp", strconv.FormatInt(old, 10), "svix-signature", svixSign(secret, "msg_svix", old, body)), ReasonTimestampTolerance},
		{"svix without signature", h("svix-id", "msg_svix", "svix-timestamp", ts), ReasonMissingSignature},
		{"no family", h("X-Other", "1"), ReasonMissingSignature},
		// A webhook-id decides the family: the svix headers are not read,
		// so the id the dedupe key is taken from is the signed one.
		{"mixed: webhook-id with svix signature", h("webhook-id", "msg_svix", "svix-timestamp", ts, "svix-signature", sig), ReasonMissingSignature},
		{"mixed: forged webhook-id beside a valid svix set", h("webhook-id", "msg_forged", "svix-id", "msg_svix", "svix-timestamp", ts, "svix-signature", sig), ReasonMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, v.Verify(Request{Header: tt.headers, Body: []byte(body)}, now)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
