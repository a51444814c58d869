package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

func startSink(t *testing.T) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0", sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// start serves cfgText (LISTEN and ADMIN replaced by free loopback ports)
// in-process until the test ends, and returns the server and the admin
// listener's base URL.
func start(t *testing.T, cfgText string) (*Server, string) {
	t.Helper()
	adminListen := testport.Addr(t)
	s := newServer(t, t.TempDir(), strings.NewReplacer("LISTEN", testport.Addr(t), "ADMIN", adminListen).Replace(cfgText))
	if err := s.Start(context.Background()); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, "http://" + adminListen
}

// newServer writes cfgText to dir/config.toml and returns a Server for
// it, not started.
func newServer(t *testing.T, dir, cfgText string) *Server {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg, Options{Path: path, Version: "test", Logger: slog.New(slog.DiscardHandler)})
}

// startErr starts s and stops it again, and returns Start's error.
func startErr(s *Server) error {
	err := s.Start(context.Background())
	s.Stop()
	return err
}

func call(t *testing.T, method, url string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, url, ct)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, b)
	}
	return resp.StatusCode, v
}

func asyncConfig(target string) string {
	return `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "crm"
url = "` + target + `/crm?token=abc"

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
`
}

// TestDeadLetterErrors: the dead-letter endpoints answer a bad request in
// the one error shape with a code a script can test.
func TestDeadLetterErrors(t *testing.T) {
	s := startSink(t)
	_, base := start(t, asyncConfig(s.URL()))
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"bad limit", "GET", "/admin/dead?limit=abc", 400, "bad_limit"},
		{"limit too big", "GET", "/admin/dead?limit=100000", 400, "bad_limit"},
		{"bad cursor", "GET", "/admin/dead?cursor=zz", 400, "bad_cursor"},
		{"replay all needs a filter", "POST", "/admin/dead/replay", 400, "no_filter"},
		{"replay all bad limit", "POST", "/admin/dead/replay?all=true&limit=0", 400, "bad_limit"},
		{"unknown id", "POST", "/admin/dead/nope/replay", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v := call(t, tt.method, base+tt.path)
			e, _ := v["error"].(map[string]any)
			if code != tt.status || e["code"] != tt.code || e["message"] == "" {
				t.Fatalf("%s %s: %d %v, want %d %s", tt.method, tt.path, code, v, tt.status, tt.code)
			}
		})
	}
	if code, v := call(t, "GET", base+"/admin/dead"); code != 200 || len(v["dead"].([]any)) != 0 {
		t.Fatalf("empty dead list: %d %v", code, v)
	}
	if code, v := call(t, "GET", base+"/admin/queue"); code != 200 || v["targets"].(map[string]any)["crm"] == nil {
		t.Fatalf("GET /admin/queue: %d %v", code, v)
	}
}

// TestNoQueue: without an async route there is no queue, and the queue's
// endpoints say so instead of answering 404.
func TestNoQueue(t *testing.T) {
	s := startSink(t)
	_, base := start(t, strings.Replace(asyncConfig(s.URL()), `targets = ["crm"]`, "mode = \"sync\"\ntargets = [\"crm\"]", 1))
	for _, p := range []string{"GET /admin/dead", "GET /admin/queue", "POST /admin/dead/replay?all=true", "POST /admin/dead/x/replay"} {
		method, path, _ := strings.Cut(p, " ")
		code, v := call(t, method, base+path)
		if e, _ := v["error"].(map[string]any); code != http.StatusConflict || e["code"] != "no_queue" {
			t.Errorf("%s: %d %v, want 409 no_queue", p, code, v)
		}
	}
}

// TestEventShowsQueryAsSent: /admin/events/{id} shows a delivery's query
// exactly as it was sent, even when a value holds '&', '=' or '+' (the
// journal once joined the pairs unescaped and they were split again).
func TestEventShowsQueryAsSent(t *testing.T) {
	s := startSink(t)
	srv, base := start(t, asyncConfig(s.URL()))
	id := []byte("evt_0000000000000000000000query")
	srv.journal.Answered(&record.Answer{Event: true, EventID: id, Route: "queued", ReceivedAt: time.Now().UnixNano(), Status: 202,
		Deliveries: []delivery.Delivery{{
			ID: append(append([]byte{}, id...), ".0"...), EventID: id, Route: "queued", Target: "crm",
			Query: []delivery.KV{
				{Key: []byte("q"), Value: []byte("a&b=c+d e")},
				{Key: []byte("email"), Value: []byte("x+y@z")},
				{Key: []byte("a"), Value: []byte("1")},
			},
		}}})
	code, v := call(t, "GET", base+"/admin/events/"+string(id))
	if code != 200 {
		t.Fatalf("GET /admin/events: %d %v", code, v)
	}
	ds, _ := v["deliveries"].([]any)
	if len(ds) != 1 {
		t.Fatalf("deliveries %v", v)
	}
	got := ds[0].(map[string]any)["url"]
	want := s.URL() + "/crm?token=[redacted]&q=a%26b%3Dc%2Bd+e&email=x%2By%40z&a=1"
	if got != want {
		t.Errorf("url\n%s\nwant\n%s", got, want)
	}
}

// TestPortInUseFailsFirst: a listen address another process holds fails
// Start at once, naming the address, before the plugins compile (a
// garbage one would fail otherwise) or the queue opens.
func TestPortInUseFailsFirst(t *testing.T) {
	for _, tt := range []struct{ which, plugin string }{{"ingest", "p"}, {"admin", "p"}, {"ingest", ""}} {
		which := tt.which
		t.Run(which+"/plugin="+tt.plugin, func(t *testing.T) {
			held, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			dir := t.TempDir()
			wasm := filepath.Join(dir, "garbage.wasm")
			if err := os.WriteFile(wasm, []byte("this is not WebAssembly"), 0o644); err != nil {
				t.Fatal(err)
			}
			listen, adminListen := testport.Addr(t), testport.Addr(t)
			if which == "ingest" {
				listen = held.Addr().String()
			} else {
				adminListen = held.Addr().String()
			}
			plugin, transforms := "", ""
			if tt.plugin != "" {
				plugin = "[[plugin]]\nname = \"p\"\nwasm = \"" + wasm + "\"\n"
				transforms = `transforms = [{ plugin = "p" }]`
			}
			cfgText := strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen, "PLUGIN", plugin, "TRANSFORMS", transforms).Replace(`
[server]
listen = "LISTEN"

[admin]
listen = "ADMIN"

[queue]
path = "queue"

PLUGIN
[[target]]
name = "crm"
url = "http://127.0.0.1:1/crm"

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
TRANSFORMS
`)
			err = startErr(newServer(t, dir, cfgText))
			if err == nil || !strings.Contains(err.Error(), which+" listener") || !strings.Contains(err.Error(), held.Addr().String()) {
				t.Fatalf("Start = %v, want the %s listener's address in use", err, which)
			}
			if _, err := os.Stat(filepath.Join(dir, "queue")); !os.IsNotExist(err) {
				t.Errorf("the queue was opened before the listeners (stat: %v)", err)
			}
			if which == "admin" {
				// The ingest address, bound before the admin one failed,
				// was let go: it binds again.
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					t.Fatalf("the ingest address was not let go: %v", err)
				}
				ln.Close()
			}
		})
	}
}
