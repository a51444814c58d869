package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

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
// answered without the body. With "Expect: 100-continue" nothing of the
// body is invited; without it, the answer comes before the sender has
// sent its body (at most one byte of it is read).
func TestAdmissionBeforeBody(t *testing.T) {
	s := startSink(t, sink.Options{})
	srv := testServer()
	srv.MaxBodyMemory = 128 << 10 // 64 KiB per client address
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
		resp, body, _ := rawRequest(t, addr, "POST /office HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50000\r\n\r\n", "")
		if resp.StatusCode != 401 || !strings.Contains(body, `"code":"ip_not_allowed"`) {
			t.Errorf("got %d %s, want 401 ip_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("ip not allowed, body sent in part", func(t *testing.T) {
		resp, body, _ := rawRequest(t, addr, "POST /office HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "{")
		if resp.StatusCode != 401 || !strings.Contains(body, `"code":"ip_not_allowed"`) {
			t.Errorf("got %d %s, want 401 ip_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("no route", func(t *testing.T) {
		resp, body, _ := rawRequest(t, addr, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "{")
		if resp.StatusCode != 404 || !strings.Contains(body, `"code":"route_not_found"`) || !strings.Contains(body, "no route for POST /nowhere") {
			t.Errorf("got %d %s, want 404 route_not_found", resp.StatusCode, body)
		}
		resp, body, _ = rawRequest(t, addr, "PUT /open HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n", "{")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(body, `"code":"method_not_allowed"`) {
			t.Errorf("got %d %s, want 405 method_not_allowed", resp.StatusCode, body)
		}
	})
	t.Run("body memory budget", func(t *testing.T) {
		// Two senders at two addresses hold 50000 bytes each of the
		// 131072 budget while the rest of their bodies trickle in: what
		// is held is what arrived.
		var holders []net.Conn
		for i, from := range []string{"127.0.0.2", "127.0.0.4"} {
			c, err := dialFrom(from, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{"+strings.Repeat(" ", 49999))
			held := int64(50000 * (i + 1))
			waitFor(t, "the holders' bytes", func() bool { return g.BodyMemory() == held })
			holders = append(holders, c)
		}
		// 40000 more would be over the budget: refused before the body.
		for _, head := range []string{
			"POST /open HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 40000\r\n\r\n",
			"POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n{",
		} {
			resp, body, _ := rawRequest(t, addr, head, "")
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, `"code":"overloaded"`) {
				t.Errorf("got %d %s Retry-After=%q, want 503 overloaded with Retry-After 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
		}
		// 20000 more from a holder's address would be over its half.
		c, err := dialFrom("127.0.0.2", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /open HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 20000\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 503 {
			t.Errorf("over the address's half: %v %v, want 503", resp, err)
		}
		// A small body still fits beside them.
		resp, body, _ := rawRequest(t, addr, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "{}")
		if resp.StatusCode != 200 {
			t.Errorf("a small body beside the holders: %d %s", resp.StatusCode, body)
		}
		// The holders finish their bodies: answered, and the budget is free again.
		for _, c := range holders {
			io.WriteString(c, strings.Repeat(" ", 9999)+"}")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			r, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || r.StatusCode != 200 {
				t.Fatalf("holder: %v %v", r, err)
			}
		}
		waitFor(t, "the budget to be released", func() bool { return g.BodyMemory() == 0 })
	})
	t.Run("a sender that goes away releases what it held", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n"+strings.Repeat(" ", 40000))
		waitFor(t, "what it sent to be held", func() bool { return g.BodyMemory() == 40000 })
		c.Close()
		waitFor(t, "the budget to be released", func() bool { return g.BodyMemory() == 0 })
	})
	var counts RouteCounts
	for _, c := range g.Counts() {
		if c.Route == "open" {
			counts = c
		}
	}
	if counts.Refused["overloaded"] != 3 {
		t.Errorf("open refusals = %v, want 3 overloaded", counts.Refused)
	}
	if n := s.Count(); n != 3 {
		t.Errorf("the target got %d requests, want the 3 admitted", n)
	}
}
