package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
)

// registerAdmin adds serve's own endpoints to the admin listener. Each
// reads the configuration being served when it is called, so they follow
// reloads.
//
//	GET  /admin/targets              targets with their queue, oldest pending and breaker
//	GET  /admin/plugins              plugins with calls, errors and instances
//	GET  /admin/events/{id}          what happened to a recent event
//	POST /admin/routes/{name}/test   what the route would send for the body (?send=true: send it)
//	POST /admin/reload               reload the config file
func (s *server) registerAdmin(a *admin.Admin) {
	a.HandleFunc("GET /admin/targets", s.handleTargets)
	a.HandleFunc("GET /admin/plugins", s.handlePlugins)
	a.HandleFunc("GET /admin/events/{id}", s.handleEvent)
	a.HandleFunc("POST /admin/routes/{name}/test", s.handleRouteTest)
	a.HandleFunc("POST /admin/reload", s.handleReload)
}

// targetJSON is one target in GET /admin/targets: its configuration
// (secrets redacted) and its live queue figures.
type targetJSON struct {
	admin.TargetInfo
	Queue *targetLiveQueue `json:"queue,omitempty"` // nil when no route is async (no queue)
}

type targetLiveQueue struct {
	Depth         int     `json:"depth"`  // pending, being sent included
	Leased        int     `json:"leased"` // being sent now
	Bytes         int64   `json:"bytes"`
	OldestPending float64 `json:"oldest_pending_seconds"`
	Dead          int     `json:"dead"`
	Breaker       string  `json:"breaker,omitempty"` // closed, half-open, open; "" for a target no longer configured
}

func (s *server) handleTargets(w http.ResponseWriter, _ *http.Request) {
	cfg := s.gw.Config()
	out := []targetJSON{}
	seen := map[string]bool{}
	for _, ti := range admin.Describe(cfg).Targets {
		out = append(out, targetJSON{TargetInfo: ti})
		seen[ti.Name] = true
	}
	if _, store, d := s.live(); d != nil {
		qs := d.QueueStats()
		stats := store.Stats()
		// A target that left the configuration but still has deliveries
		// queued (or dead) is listed too: someone has to deal with them.
		for name := range qs {
			if !seen[name] {
				out = append(out, targetJSON{TargetInfo: admin.TargetInfo{Name: name}})
			}
		}
		for i := range out {
			q := qs[out[i].Name]
			st := stats[out[i].Name]
			out[i].Queue = &targetLiveQueue{Depth: q.Depth, Leased: q.Leased, Bytes: q.Bytes,
				OldestPending: st.OldestAge.Seconds(), Dead: q.Dead, Breaker: q.Breaker}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	admin.WriteJSON(w, http.StatusOK, map[string]any{"targets": out})
}

// pluginJSON is one plugin in GET /admin/plugins.
type pluginJSON struct {
	Name       string           `json:"name"`
	Wasm       string           `json:"wasm"`
	Instances  int              `json:"instances"` // pool size
	Busy       int              `json:"busy"`
	Idle       int              `json:"idle"`
	Timeout    string           `json:"timeout"`
	MaxMemory  int64            `json:"max_memory"`
	Calls      int64            `json:"calls"`
	Errors     map[string]int64 `json:"errors"` // by kind: timeout, busy, trap, exit, memory, output, failed, abi
	Created    int64            `json:"instances_created"`
	Discarded  int64            `json:"instances_discarded"`
	LogDropped int64            `json:"log_lines_dropped"`
}

func (s *server) handlePlugins(w http.ResponseWriter, _ *http.Request) {
	cfg := s.gw.Config()
	out := []pluginJSON{}
	byName := map[string]int{}
	for _, p := range cfg.Plugins {
		byName[p.Name] = len(out)
		instances := p.Instances
		if instances <= 0 {
			instances = runtime.GOMAXPROCS(0) // the host's default pool size
		}
		out = append(out, pluginJSON{Name: p.Name, Wasm: p.Wasm, Instances: instances, Timeout: p.Timeout.String(), MaxMemory: p.MaxMemory, Errors: map[string]int64{}})
	}
	if host, _, _ := s.live(); host != nil {
		for _, st := range host.Stats() {
			i, ok := byName[st.Name]
			if !ok {
				continue // loaded once, no longer configured
			}
			p := &out[i]
			p.Busy, p.Idle, p.Calls, p.Created, p.Discarded, p.LogDropped = st.Busy, st.Idle, st.Calls, st.Created, st.Discarded, st.LogDropped
			for k, n := range st.Failures {
				p.Errors[k] = n
			}
		}
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"plugins": out})
}

func (s *server) handleEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ev, ok := s.journal.Get(id)
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf(
			"event %q is not in the recent-events journal (it keeps the last %d events since start); dead letters are in /admin/dead (this process started at %s)",
			id, s.journal.Size(), s.journal.Since().UTC().Format(time.RFC3339)))
		return
	}
	cfg := s.gw.Config()
	for i := range ev.Deliveries {
		d := &ev.Deliveries[i]
		dd := delivery.Delivery{ID: []byte(d.ID), Target: d.Target, Method: []byte(d.Method), Path: []byte(d.Path)}
		if q, err := url.ParseQuery(d.Query); err == nil && d.Query != "" {
			for _, k := range sortedQueryKeys(q) {
				for _, v := range q[k] {
					dd.Query = append(dd.Query, delivery.KV{Key: []byte(k), Value: []byte(v)})
				}
			}
		}
		shown := describe(cfg.Target(d.Target), &dd, 0)
		d.Method, d.URL = shown.Method, shown.URL
	}
	admin.WriteJSON(w, http.StatusOK, ev)
}

func sortedQueryKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// reloadJSON is the answer of a reload that worked.
type reloadJSON struct {
	Reloaded bool     `json:"reloaded"`
	Summary  string   `json:"summary"`
	Routes   []string `json:"routes"`
	Warnings []string `json:"warnings,omitempty"`
}

func (s *server) handleReload(w http.ResponseWriter, r *http.Request) {
	// A client that hangs up must not cut a reload short half-way.
	cfg, err := s.reload(context.WithoutCancel(r.Context()), "admin")
	if err != nil {
		problems := []string{err.Error()}
		var ce *config.Error
		if errors.As(err, &ce) {
			problems = ce.Problems
		}
		admin.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{
			"code":     "reload_failed",
			"message":  "the new config was not loaded; the previous one is still serving: " + strings.ReplaceAll(err.Error(), "\n", "; "),
			"problems": problems,
		}})
		return
	}
	out := reloadJSON{Reloaded: true, Summary: cfg.Summary(), Routes: []string{}, Warnings: cfg.Warnings}
	for _, rc := range cfg.Routes {
		out.Routes = append(out.Routes, rc.Name)
	}
	admin.WriteJSON(w, http.StatusOK, out)
}
