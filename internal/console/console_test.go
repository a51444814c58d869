package console_test

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

// get fetches url without following redirects.
func get(t *testing.T, method, u string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if req.Header.Get("Host") != "" {
		req.Host = req.Header.Get("Host")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	scriptTag   = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	inlineEvent = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	remoteRef   = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//`)
)

// TestPagesAreSelfContained: every page has the strict CSP and framing
// headers, loads script only from /ui/static/ (no inline script, no
// inline handler) and nothing from another host, so the console works
// offline in a sidecar.
func TestPagesAreSelfContained(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "DOWN", testport.Addr(t)).Replace(tailConfig))
	h.post(t, "/hooks/orders", `{"a":1}`, nil)
	wantCSP := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	for _, p := range []string{"/ui/", "/ui/events", "/ui/events/evt_nope", "/ui/dead", "/ui/test", "/ui/tail", "/ui/overview/live"} {
		resp, body := get(t, "GET", h.admin+p, nil, "")
		if p == "/ui/events/evt_nope" {
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not in the recent-events journal") {
				t.Errorf("%s: %d, want 404 with the API's message", p, resp.StatusCode)
			}
		} else if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
			t.Errorf("%s: CSP %q", p, got)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
		for _, tag := range scriptTag.FindAllString(body, -1) {
			if tag != `<script src="/ui/static/console.js" defer>` {
				t.Errorf("%s: script tag %s", p, tag)
			}
		}
		if m := inlineEvent.FindString(body); m != "" {
			t.Errorf("%s: inline handler in %s", p, m)
		}
		if m := remoteRef.FindString(body); m != "" {
			t.Errorf("%s: refers to another host: %s", p, m)
		}
	}
	for file, ct := range map[string]string{"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"} {
		resp, body := get(t, "GET", h.admin+"/ui/static/"+file, nil, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || len(body) < 1000 {
			t.Errorf("%s: %d %q (%d bytes)", file, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).FindString(body); m != "" {
			t.Errorf("%s fetches from another host: %s", file, m)
		}
	}
	if resp, _ := get(t, "GET", h.admin+"/ui/static/nope.js", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a missing static file: %d, want 404", resp.StatusCode)
	}
}

// TestOtherHostRefused: without admin.token (so on loopback only) the
// console answers only a loopback Host: a page whose own name resolves
// to 127.0.0.1 (DNS rebinding) cannot read it or act through it.
func TestOtherHostRefused(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "DOWN", testport.Addr(t)).Replace(tailConfig))
	port := h.admin[strings.LastIndex(h.admin, ":")+1:]
	for host, want := range map[string]int{
		"attacker.example:" + port: http.StatusMisdirectedRequest,
		"localhost:" + port:        http.StatusOK,
		"127.0.0.1:" + port:        http.StatusOK,
		"[::1]:" + port:            http.StatusOK,
	} {
		resp, body := get(t, "GET", h.admin+"/ui/", http.Header{"Host": {host}}, "")
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
		if want != 200 && strings.Contains(body, "orders") {
			t.Errorf("Host %s: the page shows the config", host)
		}
	}
}

// TestFormsNeedCSRFToken: a state-changing request needs the page's
// CSRF token, and is refused when the browser says it came from another
// site, whether or not a token is set.
func TestFormsNeedCSRFToken(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "DOWN", testport.Addr(t)).Replace(tailConfig))
	_, page := get(t, "GET", h.admin+"/ui/test", nil, "")
	m := regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	csrf := m[1]
	form := func(extra url.Values) string {
		v := url.Values{"route": {"orders"}, "action": {"send"}, "payload": {"{}"}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v.Encode()
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for name, c := range map[string]struct {
		header http.Header
		body   string
	}{
		"no token":            {hdr(), form(nil)},
		"wrong token":         {hdr(), form(url.Values{"csrf": {"x" + csrf}})},
		"another origin":      {hdr("Origin", "http://attacker.example"), form(url.Values{"csrf": {csrf}})},
		"another site":        {hdr("Sec-Fetch-Site", "cross-site"), form(url.Values{"csrf": {csrf}})},
		"a sibling site":      {hdr("Sec-Fetch-Site", "same-site"), form(url.Values{"csrf": {csrf}})},
		"opaque origin":       {hdr("Origin", "null"), form(url.Values{"csrf": {csrf}})},
		"token in the header": {hdr("X-Hookgate-CSRF", "nope"), form(nil)},
	} {
		resp, _ := get(t, "POST", h.admin+"/ui/test", c.header, c.body)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if s.Count() != 0 {
		t.Fatalf("a refused request reached the target (%d)", s.Count())
	}
	resp, body := get(t, "POST", h.admin+"/ui/test", hdr("Origin", h.admin, "Sec-Fetch-Site", "same-origin"), form(url.Values{"csrf": {csrf}}))
	if resp.StatusCode != 200 || !strings.Contains(body, "The target answered") {
		t.Fatalf("with the token: %d", resp.StatusCode)
	}
	if s.Count() != 1 {
		t.Fatalf("the test send reached the target %d times, want 1", s.Count())
	}
}

// TestTokenLogin: with admin.token set, pages redirect to the sign-in
// form; the token is taken from a POST body only (never a URL); the
// session cookie opens the console and nothing else; the JSON API still
// wants the bearer token, and the static files need nothing.
func TestTokenLogin(t *testing.T) {
	s := startSink(t, sink.Options{})
	h := start(t, strings.NewReplacer("SINK", s.URL(), "TOKEN", adminToken).Replace(tokenConfig))
	resp, _ := get(t, "GET", h.admin+"/ui/dead?target=crm", nil, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fdead%3Ftarget%3Dcrm" {
		t.Fatalf("no session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, "GET", h.admin+"/ui/static/console.css", nil, ""); resp.StatusCode != 200 {
		t.Errorf("static file without a session: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", h.admin+"/ui/overview/live", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("live fragment without a session: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", h.admin+"/ui/login?token="+adminToken, nil, ""); len(resp.Cookies()) != 0 {
		t.Error("a token in the URL signed in")
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	resp, body := get(t, "POST", h.admin+"/ui/login", form, url.Values{"token": {"wrong"}, "next": {"/ui/dead"}}.Encode())
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "not the admin token") {
		t.Fatalf("wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = get(t, "POST", h.admin+"/ui/login", form, url.Values{"token": {adminToken}, "next": {"//attacker.example/"}}.Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("right token, foreign next: %d %q, want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	cks := resp.Cookies()
	if len(cks) != 1 || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode || strings.Contains(cks[0].Value, adminToken) {
		t.Fatalf("session cookie %+v", cks)
	}
	cookie := http.Header{"Cookie": {cks[0].Name + "=" + cks[0].Value}}
	if resp, body := get(t, "GET", h.admin+"/ui/", cookie, ""); resp.StatusCode != 200 || !strings.Contains(body, "/hooks/echo") {
		t.Errorf("with the session: %d", resp.StatusCode)
	}
	for _, p := range []string{"/admin/targets", "/admin/routes", "/metrics"} {
		if resp, _ := get(t, "GET", h.admin+p, cookie, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with the console's cookie: %d, want 401", p, resp.StatusCode)
		}
	}
	if resp, _ := get(t, "GET", h.admin+"/admin/targets", http.Header{"Authorization": {"Bearer " + adminToken}}, ""); resp.StatusCode != 200 {
		t.Errorf("GET /admin/targets with the token: %d", resp.StatusCode)
	}
}

// TestExamplesAreTheSeeds: the payloads the test-send page offers are
// the repository's seed fixtures, byte for byte.
func TestExamplesAreTheSeeds(t *testing.T) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.json"))
	examples, _ := filepath.Glob(filepath.Join("examples", "*.json"))
	if len(seeds) == 0 || len(seeds) != len(examples) {
		t.Fatalf("%d seeds, %d examples", len(seeds), len(examples))
	}
	for _, p := range seeds {
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join("examples", filepath.Base(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("examples/%s differs from testdata/ (copy it again): %v", filepath.Base(p), err)
		}
	}
}

// TestContrast: the stylesheet's text colours on their backgrounds pass
// WCAG AA (4.5:1).
func TestContrast(t *testing.T) {
	css, err := os.ReadFile(filepath.Join("static", "console.css"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-f]{6})`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	pairs := [][2]string{
		{"fg", "bg"}, {"muted", "bg"}, {"link", "bg"}, {"fg", "panel"}, {"muted", "panel"}, {"top-fg", "top-bg"},
		{"ok-fg", "ok-bg"}, {"bad-fg", "bad-bg"}, {"warn-fg", "warn-bg"}, {"info-fg", "info-bg"}, {"bg", "bad-fg"}, // the danger button
	}
	for _, p := range pairs {
		a, b := vars[p[0]], vars[p[1]]
		if a == "" || b == "" {
			t.Fatalf("--%s or --%s is not in console.css", p[0], p[1])
		}
		if r := contrast(a, b); r < 4.5 {
			t.Errorf("--%s on --%s: contrast %.2f, WCAG AA needs 4.5", p[0], p[1], r)
		}
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// luminance is WCAG 2's relative luminance of "#rrggbb".
func luminance(hex string) float64 {
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}
