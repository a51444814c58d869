package gateway

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// The server keeps a connection's body buffers between requests (no
// ReduceMemoryUsage): a request body over keepBodyMax must be let go of
// once handled, and an answer over keepBodyMax must not be copied into
// the connection's buffer; smaller ones stay, to be reused.
func TestLargeBodiesAreNotKept(t *testing.T) {
	small, large := strings.Repeat("s", 100), strings.Repeat("L", keepBodyMax+1)
	tests := []struct {
		name           string
		body, answer   string
		keepReq        bool // the request body buffer is still there after the handler
		answerInBuffer bool // the answer was copied into the response's body buffer
	}{
		{name: "small request, small answer", body: small, answer: small, keepReq: true, answerInBuffer: true},
		{name: "large request, small answer", body: large, answer: small, keepReq: false, answerInBuffer: true},
		{name: "small request, large answer", body: small, answer: large, keepReq: true, answerInBuffer: false},
		{name: "large request, large answer", body: large, answer: large, keepReq: false, answerInBuffer: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, sink.Options{Body: tt.answer})
			cfg := &config.Config{Server: testServer(), Targets: []config.Target{targetAt(t, "crm", s.URL()+"/crm")},
				Routes: []config.Route{syncRoute("r", "/hooks/r", "crm")}}
			g, err := New(cfg, newDeps(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.cancel)
			var req fasthttp.Request
			req.Header.SetMethod("POST")
			req.SetRequestURI("/hooks/r")
			req.SetBodyString(tt.body)
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)

			g.handle(&ctx)

			if st := ctx.Response.StatusCode(); st != 200 || string(ctx.Response.Body()) != tt.answer {
				t.Fatalf("answer %d with %d bytes, want 200 with the sink's %d", st, len(ctx.Response.Body()), len(tt.answer))
			}
			got, err := s.Wait(1, 5*time.Second)
			if err != nil || got[0].Body != tt.body {
				t.Fatalf("the target got %d requests (err %v), want the %d byte body", len(got), err, len(tt.body))
			}
			if kept := cap(ctx.Request.Body()) > 0; kept != tt.keepReq {
				t.Errorf("request body buffer kept: %v (cap %d), want %v", kept, cap(ctx.Request.Body()), tt.keepReq)
			}
			// SwapBody hands back the body buffer's own bytes: empty when
			// the answer was sent from a copy of its own.
			if inBuf := len(ctx.Response.SwapBody(nil)) > 0; inBuf != tt.answerInBuffer {
				t.Errorf("answer in the response body buffer: %v, want %v", inBuf, tt.answerInBuffer)
			}
		})
	}
}

// On one keep-alive connection, requests and answers of every size in a
// row (a dropped buffer is grown again for the next large body) all
// arrive whole.
func TestKeepAliveBodiesOfEverySize(t *testing.T) {
	large := strings.Repeat("A", 3*keepBodyMax)
	s := startSink(t, sink.Options{Body: large})
	cfg := &config.Config{Server: testServer(), Targets: []config.Target{targetAt(t, "crm", s.URL()+"/crm")},
		Routes: []config.Route{syncRoute("r", "/hooks/r", "crm")}}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	c := &fasthttp.HostClient{Addr: base[len("http://"):], MaxConns: 1}
	sizes := []int{10, 2 * keepBodyMax, 10, keepBodyMax + 1, keepBodyMax, 4 * keepBodyMax, 1}
	for i, n := range sizes {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI(base + "/hooks/r")
		body := bytes.Repeat([]byte{byte('a' + i)}, n)
		req.SetBody(body)
		if err := c.Do(req, resp); err != nil {
			t.Fatalf("request %d (%d bytes): %v", i, n, err)
		}
		if resp.StatusCode() != 200 || string(resp.Body()) != large {
			t.Errorf("request %d (%d bytes): answer %d with %d bytes, want 200 with %d", i, n, resp.StatusCode(), len(resp.Body()), len(large))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	got, err := s.Wait(len(sizes), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if want := strings.Repeat(string(rune('a'+i)), sizes[i]); r.Body != want {
			t.Errorf("target request %d: %d bytes, want %d", i, len(r.Body), len(want))
		}
	}
	if n := s.Conns(); n != 1 {
		t.Errorf("the gateway opened %d connections to the target, want 1", n)
	}
}
