package gateway

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// FuzzIngest feeds the handler arbitrary methods, paths, headers and
// bodies, on routes with and without verification and dedupe. Whatever
// comes in, it must not panic, and every answer it makes itself (all but
// a target's forwarded answer and a duplicate's repeat of the first
// answer) is a JSON error with a code and a message.
//
// headers is "Name: value" lines.
func FuzzIngest(f *testing.F) {
	f.Add("POST", "/hooks/json", "application/json", "", []byte(`{"a":1}`))
	f.Add("POST", "/hooks/json", "application/json", "", []byte(`{"a":`))
	f.Add("GET", "/hooks/json", "", "", []byte(nil))
	f.Add("POST", "/hooks/p/deep/x?q=1", "text/plain", "", []byte("hello"))
	f.Add("POST", "/nope/%ff%00", "x", "", []byte("\xff\xfe"))
	f.Add("PATCH", "/hooks/small", "application/json", "", []byte(`{"a":"0123456789abcdef"}`))
	signed := `{"entry":{"serial_number":42}}`
	sig := "X-Hookgate-Signature: " + hmacHex(hmacSecretNew, signed)
	f.Add("POST", "/hooks/signed", "application/json", sig, []byte(signed))
	f.Add("POST", "/hooks/signed", "application/json", sig+"\nIdempotency-Key: k1", []byte(signed))
	f.Add("POST", "/hooks/signed", "application/json", "X-Hookgate-Signature: zz", []byte(signed))
	f.Add("POST", "/hooks/signed", "application/json", "X-Hookgate-Signature: "+hmacHex(hmacSecretNew, "x"), []byte(signed))
	f.Add("POST", "/hooks/basic", "application/json", "Authorization: Basic aG93eG06"+"\nAuthorization: Basic", []byte(`{}`))
	f.Add("POST", "/hooks/basic", "application/json", "Authorization: Basic !!!", []byte(`{}`))
	f.Add("POST", "/hooks/token?key="+headerToken+"&a=%zz", "", "", []byte(`{}`))
	f.Add("POST", "/hooks/token?key=%41%4", "", "", []byte(`{}`))
	f.Add("POST", "/hooks/office", "", "", []byte(`{}`))
	f.Add("POST", "/hooks/serial", "application/json", "", []byte(signed))
	f.Add("POST", "/hooks/serial", "application/json", "", []byte(`{"entry":{"serial_number":null}}`))
	f.Add("POST", "/hooks/serial", "application/json", "", []byte(`{"entry":{"serial_number":"\u0041"}}`))
	f.Add("POST", "/hooks/swh", "application/json", "webhook-id: a\nwebhook-timestamp: 99999999999\nwebhook-signature: v1,AAAA v1a,x v1,", []byte(`{}`))

	s := startSink(f, sink.Options{Discard: true})
	small := syncRoute("small", "/hooks/small", "t")
	small.MaxBody = 8
	js := syncRoute("json", "/hooks/json", "t")
	js.JSON = true
	signedRoute := syncRoute("signed", "/hooks/signed", "t")
	signedRoute.JSON = true
	signedRoute.Verify = &config.Verify{Type: "hmac", Secrets: secrets(hmacSecretOld, hmacSecretNew)}
	signedRoute.Dedupe = &config.Dedupe{Header: "Idempotency-Key"}
	basic := syncRoute("basic", "/hooks/basic", "t")
	basic.Verify = &config.Verify{Type: "basic", Username: "howxm", Secrets: secrets(basicPassword)}
	token := syncRoute("token", "/hooks/token", "t")
	token.Verify = &config.Verify{Type: "token", Query: "key", Secrets: secrets(headerToken)}
	office := syncRoute("office", "/hooks/office", "t")
	office.Verify = &config.Verify{AllowIPs: []string{"192.0.2.0/24"}}
	serial := syncRoute("serial", "/hooks/serial", "t")
	serial.JSON = true
	serial.Dedupe = &config.Dedupe{JSON: []string{"entry.serial_number"}}
	swh := syncRoute("swh", "/hooks/swh", "t")
	swh.Verify = &config.Verify{Type: "standard-webhooks", Secrets: secrets("whsec_" + whsecKey)}
	swh.Dedupe = &config.Dedupe{Header: "webhook-id"}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(f, "t", s.URL()+"/in")},
		Routes:  []config.Route{small, js, syncRoute("prefix", "/hooks/p/*", "t"), signedRoute, basic, token, office, serial, swh},
	}
	g, err := New(cfg, newDeps(f, cfg))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.cancel)

	f.Fuzz(func(t *testing.T, method, uri, contentType, headers string, body []byte) {
		if !headerSafe(contentType) {
			// fasthttp's parser refuses such a header before any handler
			// runs; only a hand-built request carries one.
			t.Skip()
		}
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(uri)
		req.Header.SetContentType(contentType)
		for _, line := range strings.Split(headers, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || !validHeaderToken(k) || !headerSafe(v) {
				continue // fasthttp's parser refuses it on the wire
			}
			req.Header.Add(k, strings.TrimSpace(v))
		}
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		before := s.Count()
		g.handle(&ctx)
		forwarded := s.Count() != before
		status := ctx.Response.StatusCode()
		if len(ctx.Response.Header.Peek("Hookgate-Event-Id")) != eventIDLen {
			t.Fatalf("no event id on a %d answer", status)
		}
		if forwarded {
			return // the target's answer, whatever it is, goes back as is
		}
		if status == 200 && strings.HasSuffix(string(ctx.Response.Body()), `","duplicate":true}`) {
			return // a repeat of an accepted event
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d answer %q is not a JSON error: %v", status, ctx.Response.Body(), err)
		}
	})
}

// headerSafe reports whether s could be a header name or value on the
// wire: fasthttp's parser refuses control characters before any handler.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderToken reports whether s is a header name fasthttp reads from the
// wire (an RFC 9110 token).
func validHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
