package gateway

import (
	"strconv"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestSvixSender: a sender on Svix signs with the Standard Webhooks
// scheme under svix-id, svix-timestamp and svix-signature. A
// standard-webhooks route accepts it, and its default dedupe keys on
// svix-id: Svix's retry of the same message is a duplicate, delivered
// once, while a different message is not.
func TestSvixSender(t *testing.T) {
	src := `
[server]
listen = "127.0.0.1:0"
[admin]
listen = ""
[[target]]
name = "crm"
url = "` + unusedURL + `"
[[route]]
name = "svix"
path = "/svix"
targets = ["crm"]
verify = { type = "standard-webhooks", secrets = ["whsec_` + whsecKey + `"] }
`
	cfg, err := config.Parse([]byte(src), t.TempDir()+"/config.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	_, base := startGateway(t, cfg, deps)

	now := time.Now().Unix()
	const body = `{"type":"user.created","data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"}}`
	svix := func(id string) map[string]string {
		return map[string]string{"svix-id": id, "svix-timestamp": strconv.FormatInt(now, 10), "svix-signature": standardSig(id, now, body)}
	}
	first := post(t, base+"/svix", body, svix("msg_2Lh9KRb0pzN4LePd3XiA4dZ8Pzl"))
	if first.status != 202 {
		t.Fatalf("a Svix-signed message: %d %s, want 202", first.status, first.body)
	}
	id := first.header.Get("Hookgate-Event-Id")
	retry := post(t, base+"/svix", body, svix("msg_2Lh9KRb0pzN4LePd3XiA4dZ8Pzl"))
	if retry.status != 202 || retry.header.Get("Hookgate-Event-Id") != id {
		t.Errorf("Svix's retry: %d %s (event %s), want 202 under the first event id %s", retry.status, retry.body, retry.header.Get("Hookgate-Event-Id"), id)
	}
	other := post(t, base+"/svix", body, svix("msg_2Lh9KSxgC1tbvkAvSKPeZ4mnI4Q"))
	if other.status != 202 || other.header.Get("Hookgate-Event-Id") == id {
		t.Errorf("another message: %d %s, want 202 as a new event", other.status, other.body)
	}
	forged := svix("msg_forged")
	forged["svix-signature"] = standardSig("msg_2Lh9KRb0pzN4LePd3XiA4dZ8Pzl", now, body)
	if a := post(t, base+"/svix", body, forged); a.status != 401 || a.errCode != "bad_signature" {
		t.Errorf("a signature moved to another svix-id: %d %s, want 401 bad_signature", a.status, a.body)
	}
	if len(q.ds) != 2 {
		t.Errorf("queued %d deliveries, want 2 (the retry is not delivered)", len(q.ds))
	}
}
