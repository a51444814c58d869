//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package gateway

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestHotPathAllocs proves the sync passthrough (route, event, deliveries,
// forward over a pooled connection, answer) allocates nothing per request
// once warm. The count covers every goroutine: the target client and the
// sink included.
func TestHotPathAllocs(t *testing.T) {
	tests := []struct {
		name string
		opts hotOpts
	}{
		{name: "one target", opts: hotOpts{targets: 1}},
		{name: "one target, json check", opts: hotOpts{targets: 1, json: true}},
		{name: "fan-out to two targets", opts: hotOpts{targets: 2}},
		{name: "fan-out to three targets", opts: hotOpts{targets: 3}},
		{name: "hmac verify with two secrets", opts: hotOpts{targets: 1, json: true, verify: true}},
		{name: "verify and a repeated dedupe key", opts: hotOpts{targets: 1, json: true, verify: true, dedupe: true}},
		{name: "verify, dedupe and metrics", opts: hotOpts{targets: 1, json: true, verify: true, dedupe: true, metrics: true}},
		{name: "one target with metrics", opts: hotOpts{targets: 1, json: true, metrics: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPathWith(t, tc.opts)
			for range 50 {
				h.serve(t)
			}
			if n := testing.AllocsPerRun(200, func() { h.serve(t) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
			if dup := strings.Contains(string(h.ctx.Response.Body()), `"duplicate":true`); dup != tc.opts.dedupe {
				t.Errorf("answer %s: duplicate %v, want %v", h.ctx.Response.Body(), dup, tc.opts.dedupe)
			}
		})
	}
}

func TestEventIDAllocs(t *testing.T) {
	buf := make([]byte, 0, eventIDLen)
	if n := testing.AllocsPerRun(100, func() { buf = appendEventID(buf[:0], fasthttp.CoarseTimeNow()) }); n != 0 {
		t.Errorf("appendEventID allocates %v times", n)
	}
}

// TestRouteLookupAllocs: finding the routes of a path, exact or by
// prefix, allocates nothing.
func TestRouteLookupAllocs(t *testing.T) {
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", unusedURL)},
		Routes: []config.Route{
			syncRoute("exact", "/hooks/a", "t"),
			syncRoute("short", "/hooks/*", "t"),
			syncRoute("long", "/hooks/deep/*", "t"),
		},
	}
	tbl, err := buildTable(cfg, newDeps(t, cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hooks/a", "/hooks/deep/x", "/other"} {
		p := []byte(path)
		if n := testing.AllocsPerRun(100, func() { tbl.lookup(p) }); n != 0 {
			t.Errorf("lookup(%s) allocates %v times", path, n)
		}
	}
}

// TestServedPathAllocs is TestHotPathAllocs through the listener: a body
// streamed and read by the handler (admit.go), the head scanner, the
// per-address accounting, the body memory budget. A raw keep-alive connection posts the same
// request again and again and reads each answer into a fixed buffer, so
// the count is the gateway's (and the sink's).
func TestServedPathAllocs(t *testing.T) {
	for _, size := range []int{100, 6 << 10} { // one read, several reads
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			s := startSink(t, sink.Options{Discard: true})
			route := syncRoute("r", "/r", "crm")
			route.JSON = true
			cfg := &config.Config{Server: testServer(), Targets: []config.Target{targetAt(t, "crm", s.URL()+"/crm")}, Routes: []config.Route{route}}
			cfg.Server.MaxBodyMemory = 1 << 20
			_, base := startGateway(t, cfg, newDeps(t, cfg))
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			body := `{"a":"` + strings.Repeat("x", size-8) + `"}`
			req := []byte(fmt.Sprintf("POST /r HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
			buf := make([]byte, 64<<10)
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						t.Fatal(err)
					}
					n += m
					head, rest, ok := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
					if !ok {
						continue
					}
					if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
						t.Fatalf("answer %q", buf[:n])
					}
					i := bytes.Index(head, []byte("Content-Length: "))
					cl := 0
					for _, d := range head[i+len("Content-Length: "):] {
						if d < '0' || d > '9' {
							break
						}
						cl = cl*10 + int(d-'0')
					}
					if len(rest) >= cl {
						return
					}
				}
			}
			for range 50 {
				roundTrip()
			}
			// One is fasthttp's own: with StreamRequestBody its serving
			// loop discards what is left of every streamed body with
			// io.CopyN, whose io.LimitedReader (24 B) escapes
			// (requestStream.discard, server.go, v1.79.0), even when
			// the handler read the body to its end. Nothing of ours
			// allocates (TestHotPathAllocs).
			if n := testing.AllocsPerRun(200, roundTrip); n > 1 {
				t.Errorf("%v allocations per request, want at most fasthttp's 1", n)
			}
		})
	}
}
