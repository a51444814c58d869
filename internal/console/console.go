// Package console is hookgate's web console: HTML pages on the admin
// listener under /ui/ for what the admin API answers in JSON. An overview
// of routes, targets and plugins that refreshes itself, event lookup,
// dead letters and their replay, a test send, and a live tail of events.
//
//	ui := console.New(console.Options{Token: cfg.Admin.Token, API: apiRoutes, Metrics: reg.Gatherer()})
//	a, _ := admin.New(cfg.Admin, log, ..., ui) // its routes sit under /ui/
//	defer ui.Close()                           // ends live streams before the admin server stops
//
// The console reads and acts only through the admin API's own handlers,
// called in-process (api.go): what it shows is redacted exactly as the
// API redacts it, and a replay or a test send is the API's. Everything it
// serves is embedded (templates, CSS, JavaScript, the seed payloads
// offered as examples), so it works offline; pages are rendered on the
// server by html/template, so every value from an event is inert text.
//
// # Security
//
//   - With admin.token set, the console asks for the token once (a login
//     form, POSTed, never in a URL) and keeps a random session id in an
//     HttpOnly, SameSite=Strict cookie. The JSON API still takes only the
//     bearer token.
//   - Without a token the admin listener is loopback-only (config and
//     admin.Serve enforce it); the console then answers only requests whose
//     Host is a loopback name, so a web page that rebinds its own DNS name
//     to 127.0.0.1 cannot read it.
//   - Every POST (replay, test send, logout) must carry the page's CSRF
//     token (form field or X-Hookgate-CSRF header) and, when the browser
//     says, come from the same origin.
//   - A strict Content-Security-Policy: scripts and styles only from
//     /ui/static/, no inline script, nothing from anywhere else.
package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
)

// Options are what a Console needs.
type Options struct {
	// Token is admin.token; unset: no login (the admin listener is then
	// loopback-only).
	Token config.Secret
	// API are the admin endpoints the console reads and acts through,
	// called in-process without the token (the console checked its own
	// session first).
	API []admin.Route
	// Metrics gives the targets' delivery rate and success ratio
	// (hookgate_target_attempts_total); nil: not shown.
	Metrics prometheus.Gatherer
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// Console serves the web console. It is an admin.Router.
type Console struct {
	api      *api
	log      *slog.Logger
	token    *[sha256.Size]byte // SHA-256 of admin.token; nil: no login
	openCSRF string             // the CSRF token when there is no login
	sessions sessions
	rates    *rates
	done     chan struct{} // closed by Close: live streams end
	closing  sync.Once
}

// Cookie and header names.
const (
	cookieName = "hookgate_console"
	csrfHeader = "X-Hookgate-CSRF"
	csrfField  = "csrf"
)

// sessionTTL is how long a login lasts.
const sessionTTL = 12 * time.Hour

// New builds a console; nothing is served until its routes are given to
// admin.New.
func New(o Options) *Console {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Console{api: newAPI(o.API), log: logger, openCSRF: randomToken(), rates: newRates(o.Metrics),
		sessions: sessions{m: map[string]session{}}, done: make(chan struct{})}
	if o.Token.IsSet() {
		sum := sha256.Sum256([]byte(o.Token.Reveal()))
		c.token = &sum
	}
	return c
}

// Close ends the live streams (tail, overview) so the admin server can
// shut down at once; pages still answer.
func (c *Console) Close() {
	if c == nil {
		return
	}
	c.closing.Do(func() { close(c.done) })
}

// page is a console handler as the admin server sees it: admin.OwnAuth,
// because the console checks its own session (a browser cannot send the
// bearer token on a link).
type page struct {
	c    *Console
	h    http.HandlerFunc
	open bool // served without a session: the login form and static files
}

// OwnAuth marks page as checking who is asking itself.
func (page) OwnAuth() {}

func (p page) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.c.serve(w, r, p.h, p.open) }

// Routes are the console's pages, all under /ui/.
func (c *Console) Routes() []admin.Route {
	rt := func(method, path string, h http.HandlerFunc) admin.Route {
		return admin.Route{Method: method, Path: path, Handler: page{c: c, h: h}}
	}
	open := func(method, path string, h http.HandlerFunc) admin.Route {
		return admin.Route{Method: method, Path: path, Handler: page{c: c, h: h, open: true}}
	}
	return []admin.Route{
		open("GET", "/ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) }),
		open("GET", "/ui/static/{file...}", c.static),
		open("GET", "/ui/login", c.loginForm),
		open("POST", "/ui/login", c.login),
		rt("POST", "/ui/logout", c.logout),
		rt("GET", "/ui/{$}", c.overview),
		rt("GET", "/ui/overview/live", c.overviewLive),
		rt("GET", "/ui/events", c.events),
		rt("GET", "/ui/events/{id}", c.event),
		rt("GET", "/ui/dead", c.dead),
		rt("POST", "/ui/dead/{id}/replay", c.replayOne),
		rt("POST", "/ui/dead/replay", c.replayMany),
		rt("GET", "/ui/test", c.testForm),
		rt("POST", "/ui/test", c.testSend),
		rt("GET", "/ui/tail", c.tail),
		rt("GET", "/ui/tail/stream", c.tailStream),
	}
}

// serve applies the console's rules to every request, then runs h.
func (c *Console) serve(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, open bool) {
	hd := w.Header()
	// Scripts and styles only from /ui/static/; no inline script, no
	// inline handler, nothing fetched from elsewhere.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin") // "no-referrer" would make the browser send "Origin: null" on a form post
	hd.Set("Cache-Control", "no-store")
	if c.token == nil && !loopbackHost(r.Host) {
		// No token: the listener is loopback-only, so any other Host is a
		// page that pointed its own name at 127.0.0.1 (DNS rebinding).
		c.refuse(w, r, http.StatusMisdirectedRequest, "Without admin.token the console answers only at a loopback address (127.0.0.1, [::1] or localhost). Open it there, or set admin.token.")
		return
	}
	if r.Method == http.MethodPost {
		// The largest form is a test send's upload; the CSRF check below
		// may read the body, so the bound comes first.
		r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		c.refuse(w, r, http.StatusForbidden, "This request came from another site, so it was refused. Use the console's own pages.")
		return
	}
	var s *session
	if c.token != nil && !open {
		s = c.sessions.get(sessionID(r))
		if s == nil {
			if r.Method == http.MethodGet && !isFragment(r) {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.refuse(w, r, http.StatusUnauthorized, "Sign in again: the console needs the admin token.")
			return
		}
	}
	if r.Method == http.MethodPost && r.URL.Path != "/ui/login" && !c.csrfOK(r, s) {
		c.refuse(w, r, http.StatusForbidden, "This form has expired (its CSRF token does not match). Reload the page and try again.")
		return
	}
	h(w, r)
}

// isFragment: a request the console's JavaScript makes (a live refresh,
// a stream, a replay with progress), answered with a status, not a page.
func isFragment(r *http.Request) bool {
	return r.Header.Get(csrfHeader) != "" || strings.Contains(r.Header.Get("Accept"), "application/json") ||
		strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.URL.Path == "/ui/overview/live"
}

// sameOrigin is false for a request the browser says came from another
// site. Browsers send Sec-Fetch-Site and Origin on POSTs; a client that
// sends neither (curl) has no cookies of a victim to abuse, and still
// needs the CSRF token.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// loopbackHost reports whether host (a Host header) names this machine.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// csrfToken is the token the pages of s embed in their forms.
func (c *Console) csrfToken(s *session) string {
	if s != nil {
		return s.csrf
	}
	return c.openCSRF
}

func (c *Console) csrfOK(r *http.Request, s *session) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = formValue(r, csrfField)
	}
	want := c.csrfToken(s)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// formValue reads a form field without consuming a multipart body the
// handler still needs: ParseMultipartForm keeps what it parsed.
func formValue(r *http.Request, name string) string {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(maxUpload); err != nil {
			return ""
		}
	}
	return r.FormValue(name)
}

// refuse answers a request the console will not serve: a short page for
// a browser, JSON for the console's scripts.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if isFragment(r) {
		code := map[int]string{http.StatusUnauthorized: "unauthorized", http.StatusForbidden: "forbidden", http.StatusMisdirectedRequest: "not_loopback"}[status]
		writeJSONError(w, status, code, msg)
		return
	}
	c.render(w, r, status, "error", pageData{Title: http.StatusText(status), Message: msg})
}

// session is one signed-in browser.
type session struct {
	csrf    string
	expires time.Time
}

// sessions are the signed-in browsers, in memory: a restart signs
// everyone out, which is fine for an operator's console.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

// maxSessions bounds the map: logging in over and over cannot grow it.
const maxSessions = 1000

func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok || time.Now().After(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return &s
}

func (ss *sessions) add() (id string, s session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	if len(ss.m) >= maxSessions {
		var oldest string
		for k, v := range ss.m {
			if now.After(v.expires) {
				delete(ss.m, k)
			} else if oldest == "" || v.expires.Before(ss.m[oldest].expires) {
				oldest = k
			}
		}
		if len(ss.m) >= maxSessions {
			delete(ss.m, oldest)
		}
	}
	id, s = randomToken(), session{csrf: randomToken(), expires: now.Add(sessionTTL)}
	ss.m[id] = s
	return id, s
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func sessionID(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loginForm is GET /ui/login.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.token == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", pageData{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))})
}

// login is POST /ui/login: the token in the form body, never the URL.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.token == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	sum := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	if subtle.ConstantTimeCompare(sum[:], c.token[:]) != 1 {
		c.log.Warn("console: sign-in refused (wrong admin token)", "remote_ip", remoteIP(r))
		c.render(w, r, http.StatusUnauthorized, "login", pageData{Title: "Sign in", Next: next,
			Message: "That is not the admin token. Use the value of admin.token in hookgate's config."})
		return
	}
	id, _ := c.sessions.add()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/ui/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout is POST /ui/logout.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	c.sessions.remove(sessionID(r))
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// safeNext is where to go after signing in: a console path, never
// another site ("//evil.example" is a URL to a browser).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

func remoteIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}
