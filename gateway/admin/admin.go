// Package admin is hookgate's admin listener: health and readiness for the
// orchestrator, and the one place every other part's admin endpoints are
// collected (routes, targets, plugins, events, dead letters, reload,
// metrics). Each part contributes a Router; every JSON answer goes through
// one writer and every error has one shape. It is not on the hot path, so
// it uses net/http.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// Route is one admin endpoint a part contributes.
type Route struct {
	Method string // "GET", "POST"
	// Path is a net/http.ServeMux path with wildcards:
	// "/admin/dead/{id}/replay". Paths other than /healthz and /readyz sit
	// behind the admin token when one is configured.
	Path string
	// Handler is usually a HandlerFunc, which answers JSON and errors in
	// the one shape; raw handlers are for what is not JSON (metrics, pprof).
	Handler http.Handler
}

// OwnAuth is a Handler that checks who is asking itself, so it is served
// without the admin token. The web console's pages are: a browser cannot
// put a bearer token on a link it follows, so the console asks for the
// token once and keeps a session cookie of its own.
type OwnAuth interface {
	http.Handler
	OwnAuth()
}

// Router is a part that adds admin endpoints, as caddy's AdminRouter:
// the admin server asks each one for its routes once, at New.
type Router interface {
	Routes() []Route
}

// Routes is a fixed list of routes; it is its own Router.
type Routes []Route

// Routes returns rs.
func (rs Routes) Routes() []Route { return rs }

// HandlerFunc is an admin endpoint that answers JSON: the value is
// written with status 200; an error is written as
// {"error":{"code":...,"message":...}} with the status of an *Error, or
// 500 internal_error for any other error.
type HandlerFunc func(r *http.Request) (any, error)

// ServeHTTP runs f and writes its answer.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, err := f(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// Error is an admin answer other than 200, written as
// {"error":{"code":...,"message":...[,"problems":[...]]}}: the same shape
// as ingest errors.
type Error struct {
	Status   int      `json:"-"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Problems []string `json:"problems,omitempty"` // a reload's config problems, one per line
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// Errorf builds an *Error whose message is formatted as with fmt.Sprintf.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Admin is the admin HTTP server.
//
//	a, err := admin.New(cfg.Admin, logger, srv, metricsRouter)
//	go a.Serve(ln)
//	a.SetReady(true) // once the gateway serves
//
// # Notes
//
// /healthz and /readyz never need the token: orchestrators probe them
// without credentials. Everything else does when admin.token is set.
type Admin struct {
	log   *slog.Logger
	mux   *http.ServeMux
	srv   *http.Server
	token *[sha256.Size]byte // SHA-256 of admin.token; nil: no token
	ready atomic.Bool
	check atomic.Pointer[func() error] // SetCheck's; nil: none
	own   map[string]bool              // patterns of OwnAuth routes
}

// New builds an admin server for cfg serving the probes and the routes of
// every router. Two routes for the same method and path are an error.
// Nothing listens until Serve.
func New(cfg config.Admin, logger *slog.Logger, routers ...Router) (*Admin, error) {
	if logger == nil {
		logger = slog.Default()
	}
	a := &Admin{log: logger, mux: http.NewServeMux(), own: map[string]bool{}}
	if cfg.Token.IsSet() {
		sum := sha256.Sum256([]byte(cfg.Token.Reveal()))
		a.token = &sum
	}
	a.srv = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	seen := map[string]bool{}
	for _, rt := range append(a.Routes(), collect(routers)...) {
		pattern := rt.Method + " " + rt.Path
		if seen[pattern] {
			return nil, fmt.Errorf("admin: two routes for %s", pattern)
		}
		seen[pattern] = true
		_, a.own[pattern] = rt.Handler.(OwnAuth)
		if err := register(a.mux, pattern, rt.Handler); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func collect(routers []Router) []Route {
	var out []Route
	for _, r := range routers {
		out = append(out, r.Routes()...)
	}
	return out
}

// register is mux.Handle with its panic (a malformed or conflicting
// pattern) turned into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("admin: route %s: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// Routes are the admin server's own: the probes.
func (a *Admin) Routes() []Route {
	return []Route{
		{"GET", "/healthz", HandlerFunc(func(*http.Request) (any, error) {
			return map[string]string{"status": "ok"}, nil
		})},
		{"GET", "/readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !a.ready.Load() {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
				return
			}
			if check := a.check.Load(); check != nil {
				if err := (*check)(); err != nil {
					writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
					return
				}
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		})},
	}
}

// SetReady says whether /readyz answers 200: true once the gateway serves,
// false again when it starts shutting down.
func (a *Admin) SetReady(ready bool) { a.ready.Store(ready) }

// SetCheck adds a condition to readiness: while the gateway serves and
// check returns an error, /readyz answers 503 with the error as its
// "reason" (so the reason must name no secret or path). internal/server
// checks the queue's store: low on disk space, or failed.
func (a *Admin) SetCheck(check func() error) { a.check.Store(&check) }

// ServeHTTP checks the token for everything but the probes and the
// OwnAuth routes, then routes.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	if a.token != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !a.own[pattern] && !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hookgate-admin"`)
		writeError(w, Errorf(http.StatusUnauthorized, "unauthorized", "this endpoint needs the admin token: send Authorization: Bearer <admin.token>"))
		return
	}
	if pattern == "" {
		writeError(w, Errorf(http.StatusNotFound, "not_found", "no admin endpoint for %s %s", r.Method, r.URL.Path))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the admin token. The digests are
// compared, not the strings: constant time in the token's length too, so
// the time taken says nothing about how long the token is.
func (a *Admin) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, got, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1
}

// ErrNoToken is Serve refusing a listener other machines can reach while
// no admin.token is set. The config loader refuses such a config; this
// is the last line, for a listener handed over some other way.
var ErrNoToken = errors.New("admin: refusing to serve on an address other machines can reach without admin.token: set token = \"${env:HOOKGATE_ADMIN_TOKEN}\" or listen on 127.0.0.1")

// Serve answers on ln until Shutdown; it returns nil after a Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
	if a.token == nil && !loopback(ln.Addr()) {
		ln.Close()
		return ErrNoToken
	}
	err := a.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown marks the process not ready and stops the server gracefully.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.SetReady(false)
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// loopback reports whether a listener accepts local connections only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.Network() == "unix"
	}
	return tcp.IP.IsLoopback()
}

// writeJSON is the one JSON writer of the admin API: compact, and not
// HTML-escaped, so URLs keep their '&'.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers err in the one error shape; an error that is not an
// *Error is a 500.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error()}
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}
