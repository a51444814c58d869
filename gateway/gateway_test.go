package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
)

// testServer is a [server] section for tests: small limits, short timeouts.
func testServer() config.Server {
	return config.Server{
		Listen:          "127.0.0.1:0",
		MaxBody:         1 << 20,
		MaxHeaderBytes:  16 << 10,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
		IdleTimeout:     30 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		MaxConcurrency:  100,
	}
}

func startSink(t testing.TB, opts sink.Options) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func targetAt(t testing.TB, name, rawURL string) config.Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return config.Target{Name: name, URL: u, Method: "POST", Timeout: 10 * time.Second, MaxConns: 16}
}

func syncRoute(name, path string, targets ...string) config.Route {
	return config.Route{Name: name, Method: "POST", Path: path, Mode: config.ModeSync, Targets: targets}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newDeps builds the target clients of cfg.
func newDeps(t testing.TB, cfg *config.Config) Deps {
	t.Helper()
	set, err := target.NewSet(cfg.Targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return Deps{Targets: set, Logger: quietLogger()}
}

// startGateway serves cfg on a loopback port and returns the base URL.
func startGateway(t testing.TB, cfg *config.Config, deps Deps) (*Gateway, string) {
	t.Helper()
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		<-served
	})
	return g, "http://" + ln.Addr().String()
}

type answer struct {
	status  int
	header  http.Header
	body    string
	errCode string
	errMsg  string
}

func send(t testing.TB, c *http.Client, method, u, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, c, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	var e struct {
		Error struct{ Code, Message string }
	}
	if resp.Header.Get("Content-Type") == "application/json" && json.Unmarshal(b, &e) == nil {
		a.errCode, a.errMsg = e.Error.Code, e.Error.Message
	}
	return a
}

func TestIngestErrors(t *testing.T) {
	up := startSink(t, sink.Options{})
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String() + "/x"
	down.Close() // nothing listens there now: connection refused

	small := syncRoute("small", "/small", "up")
	small.MaxBody = 16
	js := syncRoute("json", "/json", "up")
	js.JSON = true
	srv := testServer()
	srv.ReadTimeout = time.Second
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "up", up.URL()+"/in"), targetAt(t, "down", downURL)},
		Routes:  []config.Route{small, js, syncRoute("dead", "/dead", "down")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		msgHas                   string
		allow                    string
	}{
		{name: "unknown path", method: "POST", path: "/nope", body: "{}", status: 404, code: "route_not_found",
			msgHas: "no route for POST /nope: check the path"},
		{name: "wrong method", method: "GET", path: "/json", status: 405, code: "method_not_allowed",
			msgHas: "method GET is not allowed on /json: use POST", allow: "POST"},
		{name: "body over route limit", method: "POST", path: "/small", body: strings.Repeat("x", 17), status: 413,
			code: "body_too_large", msgHas: "limit of 16 bytes"},
		{name: "malformed json", method: "POST", path: "/json", body: `{"a":`, status: 400, code: "invalid_json",
			msgHas: `route "json" expects a JSON body`},
		{name: "empty body on json route", method: "POST", path: "/json", body: "", status: 400, code: "invalid_json"},
		{name: "target down", method: "POST", path: "/dead", body: "{}", status: 502, code: "target_unreachable",
			msgHas: `target "down" could not be reached`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, nil, tc.method, base+tc.path, "application/json", tc.body)
			if a.status != tc.status || a.errCode != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", a.status, a.errCode, a.body, tc.status, tc.code)
			}
			if !strings.Contains(a.errMsg, tc.msgHas) {
				t.Errorf("message %q does not contain %q", a.errMsg, tc.msgHas)
			}
			if got := a.header.Get("Server"); got != "" {
				t.Errorf("Server header %q; the gateway names no software", got)
			}
			if got := a.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if id := a.header.Get("Hookgate-Event-Id"); len(id) != eventIDLen || !strings.HasPrefix(id, "evt_") {
				t.Errorf("Hookgate-Event-Id = %q, want evt_ + 26 chars", id)
			}
		})
	}
	t.Run("headers over max_header_bytes", func(t *testing.T) {
		// No body: the server answers and closes on the headers, and a
		// body the client would still be writing would meet a closed
		// connection (broken pipe) instead of the answer.
		req, _ := http.NewRequest("POST", base+"/json", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 20<<10))
		a := do(t, &http.Client{Transport: &http.Transport{}}, req)
		if a.status != 431 || a.errCode != "headers_too_large" {
			t.Errorf("got %d %s", a.status, a.body)
		}
	})
	t.Run("slow client", func(t *testing.T) {
		c, err := net.Dial("tcp", base[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers promise a body that never comes: the read timeout ends it.
		io.WriteString(c, "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 408") || !strings.Contains(string(b), `"code":"request_timeout"`) {
			t.Errorf("answer %q, want 408 request_timeout", b)
		}
	})
	if n := up.Count(); n != 0 {
		t.Errorf("the sink got %d requests; refused requests must not reach a target", n)
	}
}

func TestSyncForward(t *testing.T) {
	s := startSink(t, sink.Options{Status: 201, Body: `{"ticket":42}`})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", s.URL()+"/crm/tickets")},
		Routes:  []config.Route{syncRoute("howxm", "/hooks/howxm", "crm")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	payload := `{"event":"entry_submitted","score":3}`
	req, _ := http.NewRequest("POST", base+"/hooks/howxm?src=test", strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Howxm-Event", "entry_submitted")
	req.Header.Set("Authorization", "Bearer sender-secret")
	req.Header.Set("Accept-Encoding", "gzip")
	a := do(t, nil, req)
	if a.status != 201 || a.body != `{"ticket":42}` {
		t.Fatalf("answer %d %s, want the target's 201 {\"ticket\":42}", a.status, a.body)
	}
	reqs, err := s.Wait(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := reqs[0]
	if got.Method != "POST" || got.Path != "/crm/tickets" || got.Body != payload {
		t.Errorf("sink got %s %s %q", got.Method, got.Path, got.Body)
	}
	if v := got.Header("Content-Type"); v != "application/json" {
		t.Errorf("Content-Type at target = %q", v)
	}
	if v := got.Header("X-Howxm-Event"); v != "entry_submitted" {
		t.Errorf("X-Howxm-Event at target = %q, want it forwarded", v)
	}
	for _, h := range []string{"Authorization", "Accept-Encoding"} {
		if v := got.Header(h); v != "" {
			t.Errorf("the sender's %s reached the target: %q", h, v)
		}
	}
	if got.Query != "" {
		t.Errorf("query at target = %q; the inbound query is not forwarded", got.Query)
	}
}

func TestFanOut(t *testing.T) {
	first := startSink(t, sink.Options{Status: 202, Body: `{"first":true}`})
	second := startSink(t, sink.Options{Status: 500, Body: `{"second":true}`})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", first.URL()+"/crm"), targetAt(t, "survey", second.URL()+"/survey")},
		Routes:  []config.Route{syncRoute("chat", "/hooks/smartsupp", "crm", "survey")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	a := send(t, nil, "POST", base+"/hooks/smartsupp", "application/json", `{"chat":1}`)
	if a.status != 202 || a.body != `{"first":true}` {
		t.Fatalf("answer %d %s, want the first target's 202", a.status, a.body)
	}
	for _, s := range []*sink.Sink{first, second} {
		reqs, err := s.Wait(1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if reqs[0].Body != `{"chat":1}` {
			t.Errorf("%s got body %q", s.Addr(), reqs[0].Body)
		}
	}
}

func TestConnectionReuse(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", s.URL()+"/crm")},
		Routes:  []config.Route{syncRoute("r", "/r", "crm")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	const workers, each = 4, 50
	errs := make(chan error, workers)
	for range workers {
		go func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for range each {
				resp, err := c.Post(base+"/r", "application/json", strings.NewReader(`{}`))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- &statusError{resp.StatusCode}
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count(); n != workers*each {
		t.Fatalf("sink got %d requests, want %d", n, workers*each)
	}
	if n := s.Conns(); n > workers {
		t.Errorf("sink accepted %d connections for %d requests from %d concurrent senders; want at most %d", n, workers*each, workers, workers)
	}
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

// unusedURL is a target URL for tests that build clients but send nothing.
const unusedURL = "http://127.0.0.1:9/unused"

func TestRouteTable(t *testing.T) {
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", unusedURL)},
		Routes: []config.Route{
			syncRoute("exact", "/hooks/a", "t"),
			syncRoute("short", "/hooks/*", "t"),
			syncRoute("long", "/hooks/deep/*", "t"),
			{Name: "get", Method: "GET", Path: "/hooks/a", Mode: config.ModeSync, Targets: []string{"t"}},
		},
	}
	tbl, err := buildTable(cfg, newDeps(t, cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, want string
	}{
		{"exact", "POST", "/hooks/a", "exact"},
		{"exact other method", "GET", "/hooks/a", "get"},
		{"prefix", "POST", "/hooks/b", "short"},
		{"longest prefix wins", "POST", "/hooks/deep/x/y", "long"},
		{"prefix root", "POST", "/hooks/", "short"},
		{"no match without slash", "POST", "/hooks", ""},
		{"no match", "POST", "/other", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if p := tbl.lookup([]byte(tc.path)); p != nil {
				if r := p.match([]byte(tc.method)); r != nil {
					got = r.name
				}
			}
			if got != tc.want {
				t.Errorf("%s %s matched %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
	if p := tbl.lookup([]byte("/hooks/a")); p.allow != "POST, GET" {
		t.Errorf("allow = %q", p.allow)
	}
}

func TestNewRefuses(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{Server: testServer(), Targets: []config.Target{targetAt(t, "t", unusedURL)}}
	}
	tests := []struct {
		name  string
		route config.Route
		want  string
	}{
		{"async without queue", config.Route{Name: "a", Method: "POST", Path: "/a", Mode: config.ModeAsync, Targets: []string{"t"}},
			`route "a" is async but no durable queue is configured`},
		{"transforms without host", config.Route{Name: "p", Method: "POST", Path: "/p", Mode: config.ModeSync, Targets: []string{"t"},
			Transforms: []config.Step{{Plugin: "filter"}}}, `route "p" has transforms but the gateway was started without a transforms host`},
		{"target without client", syncRoute("x", "/x", "nope"), `route "x": target "nope" has no client`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			cfg.Routes = []config.Route{tc.route}
			_, err := New(cfg, newDeps(t, cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestJSONString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "abc", `"abc"`},
		{"quotes and controls", "a\"b\\c\n\t\x01", `"a\"b\\c\n\t\u0001"`},
		{"utf8 kept", "żółw", `"żółw"`},
		{"invalid utf8", "a\xffb", `"a\ufffdb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendJSONString(nil, []byte(tc.in))
			if string(got) != tc.want || !json.Valid(got) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
