package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/verify"
	"github.com/hookgate/hookgate/internal/sink"
)

// Test secrets. .ci/secrets-scan looks for these in the test logs.
const (
	hmacSecretNew = "gw-test-hmac-new-7f3a"
	hmacSecretOld = "gw-test-hmac-old-91c2"
	basicPassword = "gw-test-basic-pw-55e1"
	queryToken    = "gw-test-query-token-0b8d"
	headerToken   = "gw-test-header-token-c4a9"
	// whsecKey is base64 of "gw-test-whsec-key-2d6f".
	whsecKey = "Z3ctdGVzdC13aHNlYy1rZXktMmQ2Zg=="
)

func secrets(vs ...string) []config.Secret {
	out := make([]config.Secret, len(vs))
	for i, v := range vs {
		out[i] = config.NewSecret(v, "")
	}
	return out
}

func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// standardSig signs id.ts.body as Standard Webhooks does.
func standardSig(id string, ts int64, body string) string {
	key, _ := base64.StdEncoding.DecodeString(whsecKey)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func post(t *testing.T, u, body string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, nil, req)
}

func TestVerifyAtIngest(t *testing.T) {
	s := startSink(t, sink.Options{})
	route := func(name string, v config.Verify) config.Route {
		r := syncRoute(name, "/"+name, "crm")
		r.Verify = &v
		return r
	}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", s.URL()+"/in")},
		Routes: []config.Route{
			route("github", config.Verify{Type: "hmac", Secrets: secrets(hmacSecretNew, hmacSecretOld), Header: "X-Hub-Signature-256", Prefix: "sha256="}),
			route("swh", config.Verify{Type: "standard-webhooks", Secrets: secrets("whsec_" + whsecKey)}),
			route("basic", config.Verify{Type: "basic", Username: "howxm", Secrets: secrets(basicPassword)}),
			route("qtoken", config.Verify{Type: "token", Query: "apiToken", Secrets: secrets(queryToken)}),
			route("htoken", config.Verify{Type: "token", Header: "X-Api-Key", Secrets: secrets(headerToken)}),
			route("office", config.Verify{AllowIPs: []string{"192.0.2.0/24"}}),
			route("local", config.Verify{Type: "hmac", Secrets: secrets(hmacSecretNew), AllowIPs: []string{"127.0.0.0/8", "::1"}}),
		},
	}
	g, base := startGateway(t, cfg, newDeps(t, cfg))

	const body = `{"action":"opened","n":1}`
	now := time.Now().Unix()
	basicAuth := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	tests := []struct {
		name    string
		path    string
		body    string
		headers map[string]string
		status  int
		code    string // "" for a forwarded request
	}{
		{name: "hmac valid", path: "/github", body: body, headers: map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(hmacSecretNew, body)}, status: 200},
		{name: "hmac rotated secret", path: "/github", body: body, headers: map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(hmacSecretOld, body)}, status: 200},
		{name: "hmac tampered body", path: "/github", body: `{"action":"closed","n":1}`, headers: map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(hmacSecretNew, body)}, status: 401, code: "bad_signature"},
		{name: "hmac wrong secret", path: "/github", body: body, headers: map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex("not-the-secret", body)}, status: 401, code: "bad_signature"},
		{name: "hmac missing header", path: "/github", body: body, status: 401, code: "missing_signature"},
		{name: "hmac malformed header", path: "/github", body: body, headers: map[string]string{"X-Hub-Signature-256": "sha1=abc"}, status: 401, code: "malformed_header"},
		{name: "standard-webhooks valid", path: "/swh", body: body, headers: map[string]string{"webhook-id": "msg_1", "webhook-timestamp": strconv.FormatInt(now, 10), "webhook-signature": standardSig("msg_1", now, body)}, status: 200},
		{name: "standard-webhooks expired", path: "/swh", body: body, headers: map[string]string{"webhook-id": "msg_2", "webhook-timestamp": strconv.FormatInt(now-600, 10), "webhook-signature": standardSig("msg_2", now-600, body)}, status: 401, code: "timestamp_out_of_tolerance"},
		{name: "standard-webhooks future", path: "/swh", body: body, headers: map[string]string{"webhook-id": "msg_3", "webhook-timestamp": strconv.FormatInt(now+600, 10), "webhook-signature": standardSig("msg_3", now+600, body)}, status: 401, code: "timestamp_out_of_tolerance"},
		{name: "basic valid", path: "/basic", body: body, headers: map[string]string{"Authorization": basicAuth("howxm", basicPassword)}, status: 200},
		{name: "basic wrong password", path: "/basic", body: body, headers: map[string]string{"Authorization": basicAuth("howxm", "guess")}, status: 401, code: "bad_credentials"},
		{name: "basic missing", path: "/basic", body: body, status: 401, code: "missing_credentials"},
		{name: "query token valid", path: "/qtoken?apiToken=" + queryToken + "&cId=7", body: body, status: 200},
		{name: "query token wrong", path: "/qtoken?apiToken=nope", body: body, status: 401, code: "bad_credentials"},
		{name: "header token valid", path: "/htoken", body: body, headers: map[string]string{"X-Api-Key": headerToken}, status: 200},
		{name: "ip not allowed", path: "/office", body: body, status: 401, code: "ip_not_allowed"},
		{name: "ip allowed and signed", path: "/local", body: body, headers: map[string]string{"X-Hookgate-Signature": hmacHex(hmacSecretNew, body)}, status: 200},
	}
	forwarded := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, base+tc.path, tc.body, tc.headers)
			if a.status != tc.status || a.errCode != tc.code {
				t.Fatalf("got %d %s, want %d %q", a.status, a.body, tc.status, tc.code)
			}
			if tc.code == "" {
				forwarded++
				return
			}
			var wantMsg string
			for _, e := range []*verify.Error{verify.ErrMissingSignature, verify.ErrMissingCredentials, verify.ErrMalformedHeader,
				verify.ErrBadSignature, verify.ErrBadCredentials, verify.ErrTimestampTolerance, verify.ErrIPNotAllowed} {
				if e.Reason == tc.code {
					wantMsg = e.Advice
				}
			}
			if a.errMsg != wantMsg {
				t.Errorf("message %q, want the fixed advice %q", a.errMsg, wantMsg)
			}
			wantChallenge := ""
			if tc.path == "/basic" {
				wantChallenge = `Basic realm="hookgate"`
			}
			if got := a.header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
			}
		})
	}
	reqs, err := s.Wait(forwarded, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != forwarded {
		t.Fatalf("the target got %d requests, want the %d verified ones only", len(reqs), forwarded)
	}
	for _, r := range reqs {
		all := r.Path + "?" + r.Query + " " + r.Body
		for k, v := range r.Headers {
			all += " " + k + ": " + v
		}
		for _, secret := range []string{basicPassword, queryToken, headerToken, base64.StdEncoding.EncodeToString([]byte("howxm:" + basicPassword))} {
			if strings.Contains(all, secret) {
				t.Errorf("the sender's credential reached the target: %s", all)
			}
		}
	}
	counts := map[string]RouteCounts{}
	for _, c := range g.Counts() {
		counts[c.Route] = c
	}
	if got := counts["github"].Refused; got["bad_signature"] != 2 || got["missing_signature"] != 1 || got["malformed_header"] != 1 {
		t.Errorf("github refusals = %v", got)
	}
	if got := counts["office"].Refused["ip_not_allowed"]; got != 1 {
		t.Errorf("office ip_not_allowed = %d, want 1", got)
	}
}

// TestCredentialNotPassedOn: a token verified in the query or a header is
// taken out of what plugins and targets see; the other query parameters
// and headers stay.
func TestCredentialNotPassedOn(t *testing.T) {
	tests := []struct {
		name, q, want string
	}{
		{"only the token", "apiToken=x", ""},
		{"token first", "apiToken=x&cId=7", "cId=7"},
		{"token in the middle, twice", "a=1&apiToken=x&b=2&apiToken=y", "a=1&b=2"},
		{"similar names kept", "apiTokenX=1&xapiToken=2", "apiTokenX=1&xapiToken=2"},
		{"empty pairs dropped", "&&a=1&", "a=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(delivery.AppendQueryWithout(nil, []byte(tc.q), []byte("apiToken"))); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	seen := &seenChain{}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", unusedURL)},
		Routes: []config.Route{
			{Name: "h", Method: "POST", Path: "/h", Mode: config.ModeAsync, Targets: []string{"crm"},
				Verify: &config.Verify{Type: "token", Header: "X-Api-Key", Secrets: secrets(headerToken)}},
			{Name: "q", Method: "POST", Path: "/q", Mode: config.ModeAsync, Targets: []string{"crm"},
				Verify:     &config.Verify{Type: "token", Query: "apiToken", Secrets: secrets(queryToken)},
				Transforms: []config.Step{{Plugin: "seen"}}},
		},
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	deps.Chains = chainMap{"q": seen}
	_, base := startGateway(t, cfg, deps)

	a := post(t, base+"/h?src=x", `{}`, map[string]string{"X-Api-Key": headerToken, "X-Keep": "yes"})
	if a.status != 202 || len(q.ds) != 1 {
		t.Fatalf("%d %s, %d queued", a.status, a.body, len(q.ds))
	}
	keep := false
	for _, h := range q.ds[0].Headers {
		if strings.EqualFold(string(h.Key), "X-Api-Key") || strings.Contains(string(h.Value), headerToken) {
			t.Errorf("queued delivery carries the sender's token: %s: %s", h.Key, h.Value)
		}
		keep = keep || string(h.Key) == "X-Keep"
	}
	if !keep {
		t.Error("other headers were dropped too")
	}

	a = post(t, base+"/q?cId=7&apiToken="+queryToken, `{}`, nil)
	if a.status != 202 || len(q.ds) != 2 {
		t.Fatalf("%d %s, %d queued", a.status, a.body, len(q.ds))
	}
	if seen.query != "cId=7" {
		t.Errorf("the plugin saw query %q, want %q", seen.query, "cId=7")
	}
	if len(q.ds[1].Query) != 0 {
		t.Errorf("an unchanged query was forwarded: %v", q.ds[1].Query)
	}
}

// seenChain records the query the plugin would see and changes nothing.
type seenChain struct{ query string }

func (c *seenChain) Run(_ context.Context, ev *delivery.Event, _ *delivery.Outcome) error {
	c.query = string(ev.Query)
	return nil
}
