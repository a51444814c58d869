package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
)

// Routes are the admin endpoints of a running hookgate, besides the
// probes (gateway/admin) and GET /admin/routes (admin.Describer). Each
// reads what is being served when it is called, so they follow reloads.
//
//	GET  /admin/targets                 targets with their queue, oldest pending and breaker
//	POST /admin/targets/{name}/enable   enable a target disable_after disabled (enable.go)
//	GET  /admin/plugins                 plugins with calls, errors and instances
//	GET  /admin/events/{id}             what happened to a recent event
//	GET  /admin/events?after=ID&limit=N recent events after event ID, oldest first (recent.go)
//	POST /admin/routes/{name}/test      what the route would send for the body (?send=true: send it)
//	POST /admin/reload                  reload the config file
//	GET  /admin/dead?target=&route=&limit=&cursor=
//	                                    dead letters, oldest first
//	POST /admin/dead/{id}/replay        replay one dead letter
//	POST /admin/dead/replay?target=|route=|all=true[&limit=N]
//	                                    replay the matching ones (at most N)
//	GET  /admin/queue                   depth, bytes, oldest age, dead, breaker per target
//	GET  /metrics                       Prometheus metrics
//	GET  /debug/pprof/...               Go's profiles
func (s *Server) Routes() []admin.Route {
	rs := []admin.Route{
		{Method: "GET", Path: "/admin/targets", Handler: admin.HandlerFunc(s.targets)},
		{Method: "POST", Path: "/admin/targets/{name}/enable", Handler: admin.HandlerFunc(s.enableTarget)},
		{Method: "GET", Path: "/admin/plugins", Handler: admin.HandlerFunc(s.plugins)},
		{Method: "GET", Path: "/admin/events/{id}", Handler: admin.HandlerFunc(s.event)},
		{Method: "GET", Path: "/admin/events", Handler: admin.HandlerFunc(s.recent)},
		{Method: "POST", Path: "/admin/routes/{name}/test", Handler: admin.HandlerFunc(s.routeTest)},
		{Method: "POST", Path: "/admin/reload", Handler: admin.HandlerFunc(s.reloadRoute)},
		{Method: "GET", Path: "/admin/dead", Handler: admin.HandlerFunc(s.deadList)},
		{Method: "POST", Path: "/admin/dead/{id}/replay", Handler: admin.HandlerFunc(s.replayOne)},
		{Method: "POST", Path: "/admin/dead/replay", Handler: admin.HandlerFunc(s.replayAll)},
		{Method: "GET", Path: "/admin/queue", Handler: admin.HandlerFunc(s.queue)},
		{Method: "GET", Path: "/metrics", Handler: s.metrics.Handler()},
	}
	return append(rs, pprofRoutes()...)
}

// pprofRoutes are Go's profiling endpoints under /debug/pprof/,
// registered explicitly (never through net/http/pprof's init on
// http.DefaultServeMux, which nothing here serves). They sit behind the
// admin token like every admin endpoint: a profile shows memory
// contents' shape and the command line, so it is an operator's.
//
//	curl -H "Authorization: Bearer $TOKEN" 127.0.0.1:9090/debug/pprof/profile?seconds=10 > cpu.pprof
func pprofRoutes() []admin.Route {
	return []admin.Route{
		{Method: "GET", Path: "/debug/pprof/", Handler: http.HandlerFunc(pprof.Index)}, // heap, goroutine, allocs, block, mutex, ...
		{Method: "GET", Path: "/debug/pprof/cmdline", Handler: http.HandlerFunc(pprof.Cmdline)},
		{Method: "GET", Path: "/debug/pprof/profile", Handler: http.HandlerFunc(pprof.Profile)},
		{Method: "GET", Path: "/debug/pprof/symbol", Handler: http.HandlerFunc(pprof.Symbol)},
		{Method: "POST", Path: "/debug/pprof/symbol", Handler: http.HandlerFunc(pprof.Symbol)},
		{Method: "GET", Path: "/debug/pprof/trace", Handler: http.HandlerFunc(pprof.Trace)},
	}
}

// targetJSON is one target in GET /admin/targets: its configuration
// (secrets redacted) and its live queue figures, as GET /admin/queue
// shows them.
type targetJSON struct {
	admin.TargetInfo
	Queue *dispatch.TargetStatus `json:"queue,omitempty"` // nil when no route is async (no queue)
}

func (s *Server) targets(*http.Request) (any, error) {
	cfg := s.gw.Config()
	out := []targetJSON{}
	seen := map[string]bool{}
	for _, ti := range admin.Describe(cfg).Targets {
		out = append(out, targetJSON{TargetInfo: ti})
		seen[ti.Name] = true
	}
	if _, _, d := s.live(); d != nil {
		qs := d.Status()
		// A target that left the configuration but still has deliveries
		// queued (or dead) is listed too: someone has to deal with them.
		for name := range qs {
			if !seen[name] {
				out = append(out, targetJSON{TargetInfo: admin.TargetInfo{Name: name}})
			}
		}
		for i := range out {
			q := qs[out[i].Name]
			out[i].Queue = &q
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return map[string]any{"targets": out}, nil
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

func (s *Server) plugins(*http.Request) (any, error) {
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
	return map[string]any{"plugins": out}, nil
}

func (s *Server) event(r *http.Request) (any, error) {
	id := r.PathValue("id")
	ev, ok := s.journal.Get(id)
	if !ok {
		return nil, admin.Errorf(http.StatusNotFound, "not_found",
			"event %q is not in the recent-events journal (it keeps the last %d events since start); dead letters are in /admin/dead (this process started at %s)",
			id, s.journal.Size(), s.journal.Since().UTC().Format(time.RFC3339))
	}
	shown := newDescriber(s.gw.Config())
	defer shown.close()
	for i := range ev.Deliveries {
		d := &ev.Deliveries[i]
		// The journal keeps the delivery's query pairs as they were sent,
		// so the URL shown is the one the target client builds.
		dd := delivery.Delivery{ID: []byte(d.ID), Target: d.Target, Method: []byte(d.Method), Path: []byte(d.Path), Query: d.Query}
		r := shown.describe(&dd, 0)
		d.Method, d.URL = r.Method, r.URL
	}
	return ev, nil
}

// reloadJSON is the answer of a reload that worked.
type reloadJSON struct {
	Reloaded bool     `json:"reloaded"`
	Summary  string   `json:"summary"`
	Routes   []string `json:"routes"`
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) reloadRoute(r *http.Request) (any, error) {
	// A client that hangs up must not cut a reload short half-way.
	cfg, err := s.Reload(context.WithoutCancel(r.Context()), "admin")
	if err != nil {
		problems := []string{err.Error()}
		var ce *config.Error
		if errors.As(err, &ce) {
			problems = ce.Problems
		}
		return nil, &admin.Error{Status: http.StatusUnprocessableEntity, Code: "reload_failed",
			Message:  "the new config was not loaded; the previous one is still serving: " + strings.ReplaceAll(err.Error(), "\n", "; "),
			Problems: problems}
	}
	out := reloadJSON{Reloaded: true, Summary: cfg.Summary(), Routes: []string{}, Warnings: cfg.Warnings}
	for _, rc := range cfg.Routes {
		out.Routes = append(out.Routes, rc.Name)
	}
	return out, nil
}
