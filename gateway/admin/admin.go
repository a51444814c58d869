// Package admin is hookgate's admin listener: health and readiness for the
// orchestrator, and a mux other packages hang their endpoints on (routes,
// dead letters, reload, metrics). It is not on the hot path, so it uses
// net/http.
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

// Admin is the admin HTTP server.
//
//	a := admin.New(cfg.Admin, logger)
//	a.Handle("GET /admin/dead/{id}", deadHandler)
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
	addr  string
	token *[sha256.Size]byte // SHA-256 of admin.token; nil: no token
	ready atomic.Bool
}

// New builds an admin server for cfg. Nothing listens until Serve.
func New(cfg config.Admin, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.Default()
	}
	a := &Admin{log: logger, mux: http.NewServeMux(), addr: cfg.Listen}
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
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.ready.Load() {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
	})
	return a
}

// Handle registers h for a Go 1.22 mux pattern such as
// "GET /admin/dead/{id}". Patterns under /admin/ sit behind the admin
// token when one is configured. Registering a pattern twice panics, as
// with http.ServeMux.
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// HandleFunc is Handle for a function.
func (a *Admin) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	a.mux.HandleFunc(pattern, h)
}

// SetReady says whether /readyz answers 200: true once the gateway serves,
// false again when it starts shutting down.
func (a *Admin) SetReady(ready bool) { a.ready.Store(ready) }

// ServeHTTP checks the token for everything but the probes, then routes.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.token != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hookgate-admin"`)
		WriteError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs the admin token: send Authorization: Bearer <admin.token>")
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no admin endpoint for %s %s", r.Method, r.URL.Path))
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

// ListenAndServe listens on admin.listen and serves.
func (a *Admin) ListenAndServe() error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", a.addr, err)
	}
	return a.Serve(ln)
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

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError answers {"error":{"code":...,"message":...}}, the same shape
// as ingest errors.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
