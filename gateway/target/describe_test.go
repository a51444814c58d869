package target

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/valyala/fasthttp"
)

// wireRequest is one request as its bytes arrived: header lines in the
// order sent, names as sent.
type wireRequest struct {
	method, requestURI string
	header             []Header
	body               string
}

func (w wireRequest) get(name string) string {
	for _, h := range w.header {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// startWire is a loopback HTTP/1.1 server that records each request's
// bytes as they arrived (no parser of ours or fasthttp's in between) and
// answers 200.
func startWire(t *testing.T) (addr string, got <-chan wireRequest) {
	t.Helper()
	ch := make(chan wireRequest, 16)
	addr = serveConns(t, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		for {
			w, err := readWire(br)
			if err != nil {
				return
			}
			ch <- w
			if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
		}
	})
	return addr, ch
}

func readWire(br *bufio.Reader) (wireRequest, error) {
	var w wireRequest
	line, err := br.ReadString('\n')
	if err != nil {
		return w, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(parts) != 3 {
		return w, io.ErrUnexpectedEOF
	}
	w.method, w.requestURI = parts[0], parts[1]
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return w, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ": ")
		if strings.EqualFold(name, "Content-Length") {
			n, _ = strconv.Atoi(value)
		}
		w.header = append(w.header, Header{Name: name, Value: value})
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return w, err
	}
	w.body = string(body)
	return w, nil
}

// TestDescribeIsWhatDoSends: for deliveries across auth modes and
// queries, the request Describe shows is the one Do sends, byte for byte,
// but for the values it redacts or cannot know (Redacted, Computed, a
// configured ${env:NAME}).
func TestDescribeIsWhatDoSends(t *testing.T) {
	addr, wire := startWire(t)
	base := "http://" + addr
	// The test's credentials, all on the CI secrets scan's list; scrub
	// keeps them out of failure messages.
	secrets := []string{"p@ss:wörd", "tok_123", "lit-secret", "growingio-secret", swSecret, "t0k&=?", "s3cr3t-token",
		base64.StdEncoding.EncodeToString([]byte("crm-user:p@ss:wörd"))}
	scrub := func(s string) string {
		for _, sec := range secrets {
			for _, form := range []string{sec, string(fasthttp.AppendQuotedArg(nil, []byte(sec)))} {
				s = strings.ReplaceAll(s, form, "<secret>")
			}
		}
		return s
	}
	query := kvs("tag", "x", "q", "a&b=c+d e", "tag", "y", "email", "jan+nps@example.pl")
	tests := []struct {
		name    string
		target  config.Target
		d       delivery.Delivery
		wantURL string // as Describe shows it, host left out
	}{
		{
			name:   "none, static and delivery query with repeated keys",
			target: config.Target{URL: mustURL(t, base+"/crm?static=1&tag=a&tag=b"), IDHeader: "Idempotency-Key"},
			d: delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte(`{"a":1}`), Query: query,
				Headers: kvs("X-Multi", "1", "x-multi", "2", "X-Source", "howxm")},
			wantURL: "/crm?static=[redacted]&tag=x&q=a%26b%3Dc%2Bd+e&tag=y&email=jan%2Bnps%40example.pl",
		},
		{
			name: "basic, GET without body, configured query replaced by the delivery",
			target: config.Target{URL: mustURL(t, base+"/api.php?cId=7"), Method: "get",
				Query: map[string]config.Secret{"apiToken": config.NewSecret("t0k&=?", "${env:SURVEYLAB_TOKEN}"), "cId": secret("s3cr3t-token")},
				Auth:  config.Auth{Type: config.AuthBasic, Username: "crm-user", Password: secret("p@ss:wörd")}},
			d:       delivery.Delivery{ID: []byte("evt_2.0"), Query: kvs("cId", "1234", "name", "Zażółć gęślą")},
			wantURL: "/api.php?apiToken=${env:SURVEYLAB_TOKEN}&cId=1234&name=Za%C5%BC%C3%B3%C5%82%C4%87+g%C4%99%C5%9Bl%C4%85",
		},
		{
			name: "bearer, lower-case target method, delivery path",
			target: config.Target{URL: mustURL(t, base+"/x?lit=s3cr3t-token"), Method: "patch",
				Auth: config.Auth{Type: config.AuthBearer, Token: secret("tok_123")}},
			d: delivery.Delivery{ID: []byte("evt_3.0"), Path: []byte("/contacts/a%20b"), Body: []byte("a=1"), Query: query,
				Headers: kvs("Content-Type", "application/x-www-form-urlencoded", "Authorization", "forged")},
			wantURL: "/contacts/a%20b?lit=[redacted]&tag=x&q=a%26b%3Dc%2Bd+e&tag=y&email=jan%2Bnps%40example.pl",
		},
		{
			name: "api key header, static headers",
			target: config.Target{URL: mustURL(t, base+"/k"),
				Headers: map[string]config.Secret{"X-Static": secret("s3cr3t-token"), "Accept": secret("application/json"),
					"X-From-Env": config.NewSecret("s3cr3t-token", "${env:STATIC}")},
				Auth: config.Auth{Type: config.AuthHeader, Header: "x-api-key", Value: secret("lit-secret")}},
			d:       delivery.Delivery{ID: []byte("evt_4.0"), Body: []byte(`{}`), Headers: kvs("X-Api-Key", "forged", "X-Static", "delivery")},
			wantURL: "/k",
		},
		{
			name: "hmac with header and prefix",
			target: config.Target{URL: mustURL(t, base+"/h?v=1"), IDHeader: "Idempotency-Key",
				Headers: map[string]config.Secret{"Content-Type": secret("text/plain; charset=utf-8")},
				Auth:    config.Auth{Type: config.AuthHMAC, Secret: secret("growingio-secret"), Header: "X-Signature", Prefix: "sha256="}},
			d:       delivery.Delivery{ID: []byte("evt_5.0"), Body: []byte("hello"), Query: kvs("v", "2", "v", "3")},
			wantURL: "/h?v=2&v=3",
		},
		{
			name: "standard webhooks",
			target: config.Target{URL: mustURL(t, base+"/sw"),
				Auth: config.Auth{Type: config.AuthStandardWebhooks, Secret: secret(swSecret)}},
			d:       delivery.Delivery{ID: []byte("evt_6.0"), Body: []byte(`{"test": 2432232314}`), Headers: kvs("webhook-id", "forged")},
			wantURL: "/sw",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.target)
			var r Result
			if err := c.Do(&tt.d, &r); err != nil || r.Status != 200 {
				t.Fatalf("Do: %v, status %d", err, r.Status)
			}
			var w wireRequest
			select {
			case w = <-wire:
			case <-time.After(5 * time.Second):
				t.Fatal("the server got nothing")
			}
			shown := c.Describe(&tt.d)

			for _, f := range append([]string{shown.Method, shown.URL, shown.Body}, headerStrings(shown.Header)...) {
				if s := scrub(f); s != f {
					t.Fatalf("Describe shows a secret: %q", s)
				}
			}
			if shown.URL != base+tt.wantURL {
				t.Errorf("url = %s, want %s", shown.URL, base+tt.wantURL)
			}
			if shown.Method != w.method {
				t.Errorf("method %q, sent %q", shown.Method, w.method)
			}
			if shown.Body != w.body {
				t.Errorf("body %q, sent %q", shown.Body, scrub(w.body))
			}
			sentURL := "http://" + w.get("Host") + w.requestURI
			if !sameURL(shown.URL, sentURL) {
				t.Errorf("url\n%s\nsent\n%s", shown.URL, scrub(sentURL))
			}
			var sent []Header
			for _, h := range w.header {
				if !strings.EqualFold(h.Name, "Host") && !strings.EqualFold(h.Name, "Content-Length") {
					sent = append(sent, h)
				}
			}
			if !sameHeaders(shown.Header, sent) {
				t.Errorf("headers\n%q\nsent\n%q", headerStrings(shown.Header), scrub(strings.Join(headerStrings(sent), "\n")))
			}
		})
	}
}

// shownValue: a value Describe shows for one it does not: a redacted or
// computed value, or the ${env:NAME} a configured value came from.
func shownValue(shown, sent string) bool {
	if shown == sent {
		return true
	}
	return sent != "" && (shown == Redacted || shown == Computed || strings.HasPrefix(shown, "${env:") && strings.HasSuffix(shown, "}"))
}

// sameURL compares two URLs pair by pair of their queries.
func sameURL(shown, sent string) bool {
	shownBase, shownQuery, _ := strings.Cut(shown, "?")
	sentBase, sentQuery, _ := strings.Cut(sent, "?")
	if shownBase != sentBase {
		return false
	}
	a, b := strings.Split(shownQuery, "&"), strings.Split(sentQuery, "&")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ka, va, _ := strings.Cut(a[i], "=")
		kb, vb, _ := strings.Cut(b[i], "=")
		if ka != kb || !shownValue(va, vb) {
			return false
		}
	}
	return true
}

// sameHeaders compares header fields name by name, the values of a
// repeated name in order; which of two names comes first is the HTTP
// library's business.
func sameHeaders(shown, sent []Header) bool {
	if len(shown) != len(sent) {
		return false
	}
	byName := func(hs []Header) map[string][]string {
		m := map[string][]string{}
		for _, h := range hs {
			m[h.Name] = append(m[h.Name], h.Value)
		}
		return m
	}
	a, b := byName(shown), byName(sent)
	for name, vs := range a {
		if len(b[name]) != len(vs) {
			return false
		}
		for i := range vs {
			if !shownValue(vs[i], b[name][i]) {
				return false
			}
		}
	}
	return true
}

func headerStrings(hs []Header) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name + ": " + h.Value
	}
	return out
}

// TestDescribeShows pins what Describe shows for the parts a person
// reads: redacted auth, computed signatures, the default Content-Type and
// User-Agent, the id header, header names as sent.
func TestDescribeShows(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:9/in")
	tests := []struct {
		name   string
		target config.Target
		d      delivery.Delivery
		want   []string
	}{
		{name: "none", target: config.Target{URL: u, IDHeader: "Idempotency-Key"},
			d:    delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte("{}")},
			want: []string{"Content-Type: application/json", "User-Agent: hookgate", "Idempotency-Key: evt_1.0"}},
		{name: "no body, no content type", target: config.Target{URL: u},
			d:    delivery.Delivery{ID: []byte("evt_1.0")},
			want: []string{"User-Agent: hookgate"}},
		{name: "basic", target: config.Target{URL: u, Auth: config.Auth{Type: config.AuthBasic, Username: "crm-user", Password: secret("p@ss:wörd")}},
			want: []string{"User-Agent: hookgate", "Authorization: [redacted]"}},
		{name: "static headers", target: config.Target{URL: u, Headers: map[string]config.Secret{
			"Accept": secret("text/csv"), "X-Key": secret("lit-secret"), "X-Env": config.NewSecret("lit-secret", "${env:KEY}")}},
			d:    delivery.Delivery{Headers: kvs("User-Agent", "howxm/2")},
			want: []string{"User-Agent: howxm/2", "Accept: text/csv", "X-Env: ${env:KEY}", "X-Key: [redacted]"}},
		{name: "hmac", target: config.Target{URL: u, Auth: config.Auth{Type: config.AuthHMAC, Secret: secret("growingio-secret")}},
			d:    delivery.Delivery{Body: []byte("{}")},
			want: []string{"Content-Type: application/json", "User-Agent: hookgate", "X-Hookgate-Signature: [computed when sent]"}},
		{name: "standard webhooks", target: config.Target{URL: u, Auth: config.Auth{Type: config.AuthStandardWebhooks, Secret: secret(swSecret)}},
			d: delivery.Delivery{ID: []byte("evt_1.0")},
			want: []string{"User-Agent: hookgate", "Webhook-Id: evt_1.0", "Webhook-Timestamp: [computed when sent]",
				"Webhook-Signature: [computed when sent]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headerStrings(newClient(t, tt.target).Describe(&tt.d).Header)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("headers\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
