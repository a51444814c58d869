package target

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// The Standard Webhooks specification's published example.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swPayload   = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardWebhooksSpecExample(t *testing.T) {
	key, err := decodeWebhookSecret(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScratch(key)
	for range 2 { // the second run reuses the scratch state
		got := sc.signStandardWebhooks([]byte(swID), []byte(strconv.Itoa(swTimestamp)), []byte(swPayload))
		if string(got) != swSignature {
			t.Errorf("signature = %s, want %s", got, swSignature)
		}
	}
}

func TestStandardWebhooksSpecExampleAtTheSink(t *testing.T) {
	s := startSink(t, sink.Options{})
	c := newClient(t, config.Target{
		URL:  mustURL(t, s.URL()+"/hook"),
		Auth: config.Auth{Type: config.AuthStandardWebhooks, Secret: secret(swSecret)},
	})
	c.now = func() time.Time { return time.Unix(swTimestamp, 0) }
	got, _ := send(t, s, c, &delivery.Delivery{ID: []byte(swID), Body: []byte(swPayload)})
	want := map[string]string{"webhook-id": swID, "webhook-timestamp": "1614265330", "webhook-signature": swSignature}
	for k, v := range want {
		if got.Header(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Header(k), v)
		}
	}
	if got.Body != swPayload {
		t.Errorf("body = %q, want the signed bytes %q", got.Body, swPayload)
	}
}

// TestAuthModes checks every mode at the sink, recomputing the expected
// header from the request the sink saw.
func TestAuthModes(t *testing.T) {
	s := startSink(t, sink.Options{})
	body := `{"entry":{"fields":{"nps":9}}}`
	tests := []struct {
		name string
		auth config.Auth
		want func(r sink.Request) map[string]string // header -> exact value; "" means absent
	}{
		{name: "none", auth: config.Auth{}, want: func(sink.Request) map[string]string {
			return map[string]string{"Authorization": "", "X-Hookgate-Signature": "", "webhook-signature": ""}
		}},
		{name: "basic", auth: config.Auth{Type: "basic", Username: "crm-user", Password: secret("p@ss:wörd")},
			want: func(sink.Request) map[string]string {
				return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("crm-user:p@ss:wörd"))}
			}},
		{name: "bearer", auth: config.Auth{Type: "bearer", Token: secret("tok_123")},
			want: func(sink.Request) map[string]string { return map[string]string{"Authorization": "Bearer tok_123"} }},
		{name: "api key header", auth: config.Auth{Type: "header", Header: "X-Api-Key", Value: secret("k-42")},
			want: func(sink.Request) map[string]string {
				return map[string]string{"X-Api-Key": "k-42"}
			}},
		{name: "hmac default header", auth: config.Auth{Type: "hmac", Secret: secret("growingio-secret")},
			want: func(r sink.Request) map[string]string {
				return map[string]string{"X-Hookgate-Signature": hexHMAC("growingio-secret", r.Body)}
			}},
		{name: "hmac header and prefix", auth: config.Auth{Type: "hmac", Secret: secret("s2"), Header: "X-Signature", Prefix: "sha256="},
			want: func(r sink.Request) map[string]string {
				return map[string]string{"X-Signature": "sha256=" + hexHMAC("s2", r.Body), "X-Hookgate-Signature": ""}
			}},
		{name: "standard webhooks", auth: config.Auth{Type: "standard-webhooks", Secret: secret(swSecret)},
			want: func(r sink.Request) map[string]string {
				id, ts := r.Header("webhook-id"), r.Header("webhook-timestamp")
				key, _ := base64.StdEncoding.DecodeString(swSecret[len("whsec_"):])
				mac := hmac.New(sha256.New, key)
				mac.Write([]byte(id + "." + ts + "." + r.Body))
				return map[string]string{
					"webhook-id":        "evt_01J.0",
					"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)),
				}
			}},
		{name: "standard webhooks without prefix", auth: config.Auth{Type: "standard-webhooks", Secret: secret(swSecret[len("whsec_"):])},
			want: func(r sink.Request) map[string]string {
				key, _ := base64.StdEncoding.DecodeString(swSecret[len("whsec_"):])
				mac := hmac.New(sha256.New, key)
				mac.Write([]byte(r.Header("webhook-id") + "." + r.Header("webhook-timestamp") + "." + r.Body))
				return map[string]string{"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/in"), Auth: tt.auth})
			d := &delivery.Delivery{
				ID:   []byte("evt_01J.0"),
				Body: []byte(body),
				// A delivery cannot forge auth: auth headers are written last.
				Headers: kvs("Authorization", "forged", "X-Signature", "forged", "webhook-signature", "forged", "X-Api-Key", "forged"),
			}
			if tt.name == "none" {
				d.Headers = nil
			}
			before := time.Now().Unix()
			got, _ := send(t, s, c, d)
			if got.Body != body {
				t.Errorf("body = %q", got.Body)
			}
			for k, v := range tt.want(got) {
				if got.Header(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Header(k), v)
				}
			}
			if tt.auth.Type == "standard-webhooks" {
				ts, err := strconv.ParseInt(got.Header("webhook-timestamp"), 10, 64)
				if err != nil || ts < before || ts > time.Now().Unix() {
					t.Errorf("webhook-timestamp = %q, want unix seconds of the send", got.Header("webhook-timestamp"))
				}
			}
		})
	}
}

func hexHMAC(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}
