package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestAdmitFindsContext guards ctxOf: the header fasthttp hands to
// HeaderReceived must be the one inside the RequestCtx the handler then
// gets. A fasthttp upgrade that breaks this fails here, not in production.
func TestAdmitFindsContext(t *testing.T) {
	got := make(chan *fasthttp.RequestCtx, 1)
	srv := &fasthttp.Server{
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			got <- ctxOf(h)
			return fasthttp.RequestConfig{}
		},
		Handler: func(ctx *fasthttp.RequestCtx) {
			if derived := <-got; derived != ctx {
				ctx.SetStatusCode(500)
				return
			}
			if _, ok := ctx.Conn().(*net.TCPConn); !ok {
				ctx.SetStatusCode(501)
				return
			}
			ctx.SetStatusCode(204)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	for range 3 { // the same connection, then new ones: pooled contexts too
		resp, err := http.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("status %d: HeaderReceived's header is not in the handler's RequestCtx", resp.StatusCode)
		}
	}
}

// rawRequest writes head (and body, if any) on a new connection and
// returns the answer, or fails the test.
func rawRequest(t *testing.T, addr, head, body string) (*http.Response, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, head+body)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), c
}

// TestAdmissionBeforeBody: refusals decided on the headers alone are
// answered without waiting for the body. The requests below announce a
// body they never send; an answer at all proves it was not awaited.
func TestAdmissionBeforeBody(t *testing.T) {
	s := startSink(t, sink.Options{})
	srv := testServer()
	srv.MaxBodyMemory = 64 << 10
	office := syncRoute("office", "/office", "crm")
	office.Verify = &config.Verify{AllowIPs: []string{"192.0.2.0/24"}}
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{office, syncRoute("open", "/open", "crm")},
	}
	cfg.Routes[1].MaxBody = 60 << 10
	g, base := startGateway(t, cfg, newDeps(t, cfg))
	addr := strings.TrimPrefix(base, "http://")

	t.Run("ip not allowed", func(t *testing.T) {
		resp, body, _ := rawRequest(t, addr, "POST /office HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "")
		if resp.StatusCode != 401 || !strings.Contains(body, `"code":"ip_not_allowed"`) {
			t.Errorf("got %d %s, want 401 ip_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("ip not allowed, tiny body", func(t *testing.T) {
		resp, body, _ := rawRequest(t, addr, "POST /office HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", "x")
		if resp.StatusCode != 401 || !strings.Contains(body, `"code":"ip_not_allowed"`) {
			t.Errorf("got %d %s, want 401 ip_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("no route", func(t *testing.T) {
		resp, body, _ := rawRequest(t, addr, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "")
		if resp.StatusCode != 404 || !strings.Contains(body, `"code":"route_not_found"`) || !strings.Contains(body, "no route for POST /nowhere") {
			t.Errorf("got %d %s, want 404 route_not_found", resp.StatusCode, body)
		}
		resp, body, _ = rawRequest(t, addr, "PUT /open HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(body, `"code":"method_not_allowed"`) {
			t.Errorf("got %d %s, want 405 method_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("body memory budget", func(t *testing.T) {
		// A holds 50000 of the 65536 budget bytes while its body trickles in.
		a, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		io.WriteString(a, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n{")
		waitFor(t, "A's reservation", func() bool { return g.BodyMemory() == 50000 })

		resp, body, _ := rawRequest(t, addr, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n", "")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, `"code":"overloaded"`) {
			t.Errorf("B got %d %s Retry-After=%q, want 503 overloaded with Retry-After 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		// A small body still fits beside A.
		resp, body, _ = rawRequest(t, addr, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "{}")
		if resp.StatusCode != 200 {
			t.Errorf("a small body beside A: %d %s", resp.StatusCode, body)
		}
		// A finishes its body: answered, and the budget is free again.
		io.WriteString(a, strings.Repeat(" ", 49998)+"}")
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		ra, err := http.ReadResponse(bufio.NewReader(a), nil)
		if err != nil || ra.StatusCode != 200 {
			t.Fatalf("A: %v %v", ra, err)
		}
		waitFor(t, "the budget to be released", func() bool { return g.BodyMemory() == 0 })
	})
	t.Run("a sender that goes away releases its reservation", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /open HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 40000\r\n\r\n")
		waitFor(t, "the reservation", func() bool { return g.BodyMemory() == 40000 })
		c.Close()
		waitFor(t, "the budget to be released", func() bool { return g.BodyMemory() == 0 })
	})
	var counts RouteCounts
	for _, c := range g.Counts() {
		if c.Route == "open" {
			counts = c
		}
	}
	if counts.Refused["overloaded"] != 1 {
		t.Errorf("open refusals = %v, want 1 overloaded", counts.Refused)
	}
	if n := s.Count(); n != 2 {
		t.Errorf("the target got %d requests, want the 2 admitted", n)
	}
}
