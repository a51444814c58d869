// Package admin is hookgate's admin listener: health and readiness for the
// orchestrator, and a mux other packages hang their endpoints on (routes,
// dead letters, reload, metrics). It is not on the hot path, so it uses
// net/http.
package admin

import (
	"context"
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
	token string
	ready atomic.Bool
}

// New builds an admin server for cfg. Nothing listens until Serve.
func New(cfg config.Admin, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.Default()
	}
	a := &Admin{log: logger, mux: http.NewServeMux(), addr: cfg.Listen, token: cfg.Token.Reveal()}
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
	if a.token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			WriteError(w, http.StatusUnauthorized, "unauthorized", "this endpoint needs the admin token: send Authorization: Bearer <admin.token>")
			return
		}
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no admin endpoint for %s %s", r.Method, r.URL.Path))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Serve answers on ln until Shutdown; it returns nil after a Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
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
