package target

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

func startSink(t testing.TB, opts sink.Options) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newClient(t testing.TB, tc config.Target) *Client {
	t.Helper()
	if tc.Name == "" {
		tc.Name = "crm"
	}
	c, err := New(tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func secret(v string) config.Secret { return config.NewSecret(v, "") }

func kvs(pairs ...string) []delivery.KV {
	var out []delivery.KV
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, delivery.KV{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return out
}

// send delivers d through c and returns what the sink recorded.
func send(t *testing.T, s *sink.Sink, c *Client, d *delivery.Delivery) (sink.Request, Result) {
	t.Helper()
	before := len(s.Requests())
	var r Result
	if err := c.Do(d, &r); err != nil {
		t.Fatalf("Do: %v", err)
	}
	reqs, err := s.Wait(before+1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return reqs[before], r
}

func TestRequestBuilding(t *testing.T) {
	s := startSink(t, sink.Options{})
	tests := []struct {
		name      string
		target    config.Target
		d         delivery.Delivery
		wantMeth  string
		wantPath  string
		wantQuery string
		wantBody  string
		wantHdr   map[string]string // "" means absent
	}{
		{
			name:     "target defaults",
			target:   config.Target{URL: mustURL(t, s.URL()+"/crm"), IDHeader: "Idempotency-Key"},
			d:        delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte(`{"a":1}`)},
			wantMeth: "POST", wantPath: "/crm", wantBody: `{"a":1}`,
			wantHdr: map[string]string{"Content-Type": "application/json", "Idempotency-Key": "evt_1.0", "User-Agent": "hookgate"},
		},
		{
			name:     "delivery method and path win, id header disabled, no body no content type",
			target:   config.Target{URL: mustURL(t, s.URL()+"/crm"), Method: "put"},
			d:        delivery.Delivery{ID: []byte("evt_1.0"), Method: []byte("DELETE"), Path: []byte("/contacts/42")},
			wantMeth: "DELETE", wantPath: "/contacts/42",
			wantHdr: map[string]string{"Content-Type": "", "Idempotency-Key": ""},
		},
		{
			name:     "target method used when delivery has none; escaped path kept as is",
			target:   config.Target{URL: mustURL(t, s.URL()+"/a%20b/c"), Method: "put"},
			d:        delivery.Delivery{Body: []byte("x")},
			wantMeth: "PUT", wantPath: "/a%20b/c", wantBody: "x",
		},
		{
			name: "query: url, then table, then delivery; same key replaces",
			target: config.Target{
				URL:   mustURL(t, s.URL()+"/q?v=1&keep=u&tag=a&tag=c"),
				Query: map[string]config.Secret{"keep": secret("table"), "z": secret("last")},
			},
			d:         delivery.Delivery{Query: kvs("keep", "delivery", "tag", "b", "new", "x y", "new", "2")},
			wantMeth:  "POST",
			wantPath:  "/q",
			wantQuery: "v=1&z=last&keep=delivery&tag=b&new=x+y&new=2",
		},
		{
			name: "headers: static then delivery (same name replaces), framing headers ignored",
			target: config.Target{
				URL:     mustURL(t, s.URL()+"/h"),
				Headers: map[string]config.Secret{"X-Static": secret("s"), "X-Over": secret("static"), "Content-Type": secret("text/plain")},
			},
			d: delivery.Delivery{Body: []byte("hi"), Headers: kvs(
				"x-over", "delivery", "Host", "evil.example", "Content-Length", "999", "Connection", "close",
				"X-Multi", "1", "X-Multi", "2")},
			wantMeth: "POST", wantPath: "/h", wantBody: "hi",
			wantHdr: map[string]string{
				"X-Static": "s", "X-Over": "delivery", "Content-Type": "text/plain", "Host": s.Addr(),
				"Content-Length": "2", "X-Multi": "1, 2", "Connection": "",
			},
		},
		{
			name:     "delivery content type wins over the json default",
			target:   config.Target{URL: mustURL(t, s.URL()+"/")},
			d:        delivery.Delivery{Body: []byte("a=1"), Headers: kvs("Content-Type", "application/x-www-form-urlencoded")},
			wantMeth: "POST", wantPath: "/", wantBody: "a=1",
			wantHdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		},
		{
			// Seed 001: SurveyLab invitations are a GET with the token and
			// the respondent in the query.
			name: "surveylab GET",
			target: config.Target{
				URL: mustURL(t, s.URL()+"/api.php"), Method: "GET",
				Query: map[string]config.Secret{"apiToken": config.NewSecret("t0k&=?", "${env:SURVEYLAB_TOKEN}")},
			},
			d: delivery.Delivery{ID: []byte("evt_9.0"), Query: kvs(
				"cId", "1234", "email", "jan.kowalski+nps@example.pl", "crk", "evt_9.0", "name", "Zażółć gęślą")},
			wantMeth: "GET", wantPath: "/api.php",
			wantQuery: "apiToken=t0k%26%3D%3F&cId=1234&email=jan.kowalski%2Bnps%40example.pl&crk=evt_9.0" +
				"&name=Za%C5%BC%C3%B3%C5%82%C4%87+g%C4%99%C5%9Bl%C4%85",
			wantHdr: map[string]string{"Content-Type": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.target)
			got, r := send(t, s, c, &tt.d)
			if r.Status != 200 || string(r.Body) != sink.DefaultBody {
				t.Errorf("result = %d %q", r.Status, r.Body)
			}
			if got.Method != tt.wantMeth || got.Path != tt.wantPath || got.Query != tt.wantQuery || got.Body != tt.wantBody {
				t.Errorf("got %s %s ? %q body %q\nwant %s %s ? %q body %q",
					got.Method, got.Path, got.Query, got.Body, tt.wantMeth, tt.wantPath, tt.wantQuery, tt.wantBody)
			}
			for k, want := range tt.wantHdr {
				if v := got.Header(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			if q, err := url.ParseQuery(got.Query); err != nil {
				t.Errorf("query %q does not parse: %v", got.Query, err)
			} else if tt.name == "surveylab GET" {
				if q.Get("apiToken") != "t0k&=?" || q.Get("email") != "jan.kowalski+nps@example.pl" || q.Get("name") != "Zażółć gęślą" {
					t.Errorf("decoded query = %v", q)
				}
			}
		})
	}
}

func TestResultFields(t *testing.T) {
	s := startSink(t, sink.Options{Status: 503, RetryAfter: "120", Body: `{"status":false}`})
	c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/")})
	var r Result
	r.Body = append(r.Body, "stale bytes from a previous call"...)
	r.BodyTooLarge = true
	if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 503 || string(r.RetryAfter) != "120" || string(r.ContentType) != "application/json" ||
		string(r.Body) != `{"status":false}` || r.BodyTooLarge {
		t.Errorf("result = %d retry-after %q type %q body %q too large %v", r.Status, r.RetryAfter, r.ContentType, r.Body, r.BodyTooLarge)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name     string
		body     string
		wantBody string
		wantBig  bool
	}{
		{name: "at the limit", body: strings.Repeat("a", limit), wantBody: strings.Repeat("a", limit)},
		{name: "over the limit", body: strings.Repeat("b", limit+1), wantBig: true},
		{name: "far over the limit", body: strings.Repeat("c", 1<<20), wantBig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, sink.Options{Status: 201, Body: tt.body, RetryAfter: "3"})
			c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/"), MaxResponseSize: limit})
			for i := range 2 { // the client stays usable after an oversized answer
				var r Result
				if err := c.Do(&delivery.Delivery{}, &r); err != nil {
					t.Fatalf("Do %d: %v", i, err)
				}
				if r.Status != 201 || string(r.Body) != tt.wantBody || r.BodyTooLarge != tt.wantBig || string(r.RetryAfter) != "3" {
					t.Errorf("Do %d: status %d, body %d bytes, too large %v, retry-after %q", i, r.Status, len(r.Body), r.BodyTooLarge, r.RetryAfter)
				}
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	const maxConns = 4
	s := startSink(t, sink.Options{Discard: true})
	c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/"), MaxConns: maxConns})
	d := &delivery.Delivery{ID: []byte("evt_x.0"), Body: []byte(`{"n":1}`)}
	var r Result
	for i := range 500 {
		if err := c.Do(d, &r); err != nil || r.Status != 200 {
			t.Fatalf("sequential %d: %v, status %d", i, err, r.Status)
		}
	}
	if got := s.Conns(); got != 1 {
		t.Errorf("500 sequential requests used %d connections, want 1", got)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			var r Result
			for range 100 {
				if err := c.Do(d, &r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.Count() != 1300 {
		t.Errorf("sink counted %d requests, want 1300", s.Count())
	}
	if got := s.Conns(); got < 1 || got > maxConns {
		t.Errorf("1300 requests used %d connections, want 1..%d", got, maxConns)
	}
}

func TestMaxConnsRespected(t *testing.T) {
	s := startSink(t, sink.Options{Delay: 100 * time.Millisecond})
	c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/"), MaxConns: 2, Timeout: 30 * time.Second})
	var wg sync.WaitGroup
	statuses := make(chan int, 6)
	for range 6 {
		wg.Go(func() {
			var r Result
			if err := c.Do(&delivery.Delivery{}, &r); err != nil {
				t.Error(err)
			}
			statuses <- r.Status
		})
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Errorf("status %d, want 200: requests beyond max_conns wait for a connection", st)
		}
	}
	if got := s.Conns(); got != 2 {
		t.Errorf("6 concurrent requests with max_conns 2 opened %d connections, want 2", got)
	}
}

func TestTimeout(t *testing.T) {
	s := startSink(t, sink.Options{Delay: time.Minute})
	c := newClient(t, config.Target{Name: "slow", URL: mustURL(t, s.URL()+"/slow"), Timeout: 100 * time.Millisecond})
	start := time.Now()
	var r Result
	err := c.Do(&delivery.Delivery{}, &r)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	var te *Error
	if !errors.As(err, &te) || !te.Timeout() || te.Target != "slow" {
		t.Errorf("err = %#v, want an *Error for target slow that says Timeout", err)
	}
	want := `target "slow": POST ` + s.URL() + `/slow: timed out after 100ms: `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want prefix %q", err.Error(), want)
	}
	// Generous: the point is that Do does not wait for the minute-long answer.
	if elapsed > 20*time.Second {
		t.Errorf("Do took %v with a 100ms timeout", elapsed)
	}
}

// TestPoolSaturated: with every connection busy past the timeout, Do
// gives up with ErrTimeout instead of hanging.
func TestPoolSaturated(t *testing.T) {
	s := startSink(t, sink.Options{Delay: time.Minute})
	c := newClient(t, config.Target{URL: mustURL(t, s.URL()+"/"), MaxConns: 1, Timeout: 200 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			var r Result
			errs[i] = c.Do(&delivery.Delivery{}, &r)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("request %d: err = %v, want ErrTimeout", i, err)
		}
	}
	// A connection closed by a request's timeout is replaced for a
	// request waiting on the full pool (fasthttp dials it anew), one at a
	// time: at most one per request (TestMaxConnsRespected checks that
	// they never overlap).
	if got := s.Conns(); got < 1 || got > len(errs) {
		t.Errorf("connections = %d, want 1 to %d", got, len(errs))
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, config.Target{
		URL:   mustURL(t, "http://"+addr+"/api.php?cId=7&key=inurl"),
		Query: map[string]config.Secret{"apiToken": config.NewSecret("s3cr3t-token", "${env:SURVEYLAB_TOKEN}"), "lit": secret("lit-secret")},
	})
	d := &delivery.Delivery{Query: kvs("apiToken", "delivery-s3cr3t", "email", "a@b.pl")}
	var r Result
	err = c.Do(d, &r)
	if err == nil {
		t.Fatal("Do to a closed port succeeded")
	}
	if errors.Is(err, ErrTimeout) {
		t.Errorf("refused connection reported as a timeout: %v", err)
	}
	msg := err.Error()
	want := `target "crm": POST http://` + addr + `/api.php?cId=[redacted]&key=[redacted]&apiToken=${env:SURVEYLAB_TOKEN}&lit=[redacted]&email=a%40b.pl: `
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "connection refused") {
		t.Errorf("message = %q\nwant prefix %q and 'connection refused'", msg, want)
	}
	for _, leak := range []string{"s3cr3t", "lit-secret", "inurl"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message leaks %q: %s", leak, msg)
		}
	}
}

func TestNewRejects(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:9/")
	tests := []struct {
		name    string
		target  config.Target
		wantErr string
	}{
		{name: "no url", target: config.Target{Name: "a"}, wantErr: `target "a": no url`},
		{name: "bad scheme", target: config.Target{Name: "a", URL: mustURL(t, "ftp://x/")}, wantErr: `target "a": url scheme "ftp" must be http or https`},
		{name: "no host", target: config.Target{Name: "a", URL: mustURL(t, "http:///x")}, wantErr: `target "a": url has no host`},
		{name: "owned header", target: config.Target{Name: "a", URL: u, Headers: map[string]config.Secret{"content-length": secret("1")}},
			wantErr: `header "content-length" is set by hookgate`},
		{name: "unknown auth", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "digest"}}, wantErr: `auth: unknown type "digest"`},
		{name: "basic without user", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "basic"}}, wantErr: "basic needs a username"},
		{name: "bearer without token", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "bearer"}}, wantErr: "bearer needs a token"},
		{name: "header without value", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "header", Header: "X-Key"}}, wantErr: "header needs"},
		{name: "hmac without secret", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "hmac"}}, wantErr: "hmac needs a secret"},
		{name: "whsec not base64", target: config.Target{Name: "a", URL: u, Auth: config.Auth{Type: "standard-webhooks", Secret: secret("whsec_!!notbase64")}},
			wantErr: "whsec_ followed by base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.target)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "notbase64") {
				t.Errorf("err leaks the secret: %q", err)
			}
		})
	}
}

func TestNewAddr(t *testing.T) {
	tests := []struct {
		name, url, wantAddr, wantHost string
		wantTLS                       bool
	}{
		{name: "http default port", url: "http://crm.example.com/x", wantAddr: "crm.example.com:80", wantHost: "crm.example.com"},
		{name: "https default port", url: "https://crm.example.com/x", wantAddr: "crm.example.com:443", wantHost: "crm.example.com", wantTLS: true},
		{name: "explicit port", url: "https://crm.example.com:8443", wantAddr: "crm.example.com:8443", wantHost: "crm.example.com:8443", wantTLS: true},
		{name: "ipv6", url: "http://[::1]:9000/", wantAddr: "[::1]:9000", wantHost: "[::1]:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, config.Target{URL: mustURL(t, tt.url)})
			if c.hc.Addr != tt.wantAddr || string(c.host) != tt.wantHost || c.hc.IsTLS != tt.wantTLS {
				t.Errorf("addr %q host %q tls %v, want %q %q %v", c.hc.Addr, c.host, c.hc.IsTLS, tt.wantAddr, tt.wantHost, tt.wantTLS)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := newClient(t, config.Target{URL: mustURL(t, "http://127.0.0.1:9/")})
	got := c.Config()
	if got.Method != "POST" || got.Timeout != config.DefaultTargetTimeout || got.MaxConns != config.DefaultTargetMaxConns ||
		got.MaxResponseSize != config.DefaultTargetMaxResponseSize || got.IdleTimeout != config.DefaultTargetIdleTimeout ||
		got.Auth.Type != config.AuthNone {
		t.Errorf("defaults not filled: %+v", got)
	}
	if c.hc.MaxConns != config.DefaultTargetMaxConns || c.hc.MaxResponseBodySize != config.DefaultTargetMaxResponseSize ||
		c.hc.MaxIdleConnDuration != config.DefaultTargetIdleTimeout || c.hc.MaxConnWaitTimeout != config.DefaultTargetTimeout {
		t.Errorf("host client not configured from the target: %+v", c.hc)
	}
}

func TestSet(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:9/")
	s, err := NewSet([]config.Target{{Name: "crm", URL: u}, {Name: "sms", URL: u}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Get("crm") == nil || s.Get("crm").Name() != "crm" || s.Get("sms").Name() != "sms" || s.Get("nope") != nil {
		t.Error("Get does not find targets by name")
	}
	_, err = NewSet([]config.Target{{Name: "crm", URL: u}, {Name: "crm", URL: u}, {Name: "bad"}})
	if err == nil || !strings.Contains(err.Error(), `target "crm": defined twice`) || !strings.Contains(err.Error(), `target "bad": no url`) {
		t.Errorf("NewSet err = %v, want both mistakes", err)
	}
}

func TestHTTPS(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.RequestURI() + " " + string(b) + " " + r.Header.Get("Authorization"))
		w.WriteHeader(202)
	}))
	defer srv.Close()
	c := newClient(t, config.Target{URL: mustURL(t, srv.URL+"/secure?a=1"), Auth: config.Auth{Type: "bearer", Token: secret("t")}})
	// Trust the test server's certificate; everything else is the
	// production TLS path.
	c.hc.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	var r Result
	if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 202 || got.Load() != "POST /secure?a=1 {} Bearer t" {
		t.Errorf("status %d, server saw %q", r.Status, got.Load())
	}
}

// TestStaleKeepAliveRetried: a target that closes an idle keep-alive
// connection without saying so must not fail the next delivery; Do retries
// it once on a fresh connection.
func TestStaleKeepAliveRetried(t *testing.T) {
	var accepted atomic.Int64
	addr := serveConns(t, func(conn net.Conn) { // closed after one answer, as if its idle timeout hit
		accepted.Add(1)
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	c := newClient(t, config.Target{URL: mustURL(t, "http://"+addr+"/")})
	for i := range 3 {
		var r Result
		if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 200 || string(r.Body) != "ok" {
			t.Fatalf("Do %d: %v, status %d %q", i, err, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond) // let the close reach the client's pool
	}
	if got := accepted.Load(); got != 3 {
		t.Errorf("accepted %d connections, want 3 (one per request)", got)
	}
}

// serveConns runs a TCP server on 127.0.0.1 for the test: each connection
// goes to handle on a goroutine of its own and is closed when handle
// returns. It returns the server's address.
func serveConns(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
