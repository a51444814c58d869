package gateway

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/sink"
)

// FuzzIngest feeds the handler arbitrary methods, paths, headers and
// bodies. Whatever comes in, it must not panic, and every answer it makes
// itself (all but a target's forwarded answer) is a JSON error with a
// code and a message.
func FuzzIngest(f *testing.F) {
	f.Add("POST", "/hooks/json", "application/json", []byte(`{"a":1}`))
	f.Add("POST", "/hooks/json", "application/json", []byte(`{"a":`))
	f.Add("GET", "/hooks/json", "", []byte(nil))
	f.Add("POST", "/hooks/p/deep/x?q=1", "text/plain", []byte("hello"))
	f.Add("POST", "/nope/%ff%00", "x", []byte("\xff\xfe"))
	f.Add("PATCH", "/hooks/small", "application/json", []byte(`{"a":"0123456789abcdef"}`))

	s := startSink(f, sink.Options{Discard: true})
	small := syncRoute("small", "/hooks/small", "t")
	small.MaxBody = 8
	js := syncRoute("json", "/hooks/json", "t")
	js.JSON = true
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(f, "t", s.URL()+"/in")},
		Routes:  []config.Route{small, js, syncRoute("prefix", "/hooks/p/*", "t")},
	}
	g, err := New(cfg, newDeps(f, cfg))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.cancel)

	f.Fuzz(func(t *testing.T, method, uri, contentType string, body []byte) {
		for i := 0; i < len(contentType); i++ {
			if c := contentType[i]; c < 0x20 && c != '\t' || c == 0x7f {
				// fasthttp's parser refuses such a header before any
				// handler runs; only a hand-built request carries one.
				t.Skip()
			}
		}
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(uri)
		req.Header.SetContentType(contentType)
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
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d answer %q is not a JSON error: %v", status, ctx.Response.Body(), err)
		}
	})
}
