package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/journal"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/transforms"
)

const serveHelp = `Usage: hookgate serve --config FILE [--watch]

Run the gateway: listen on server.listen for webhooks, route each one by
method and path, run the route's transforms, and forward the deliveries to
the targets (sync routes) or queue them durably (async routes). The admin
listener (admin.listen) serves /healthz, /readyz and the /admin API.
SIGHUP, POST /admin/reload, and with --watch any change to the config
file or a plugin's .wasm file reload the config: the new config and
plugins are loaded and compiled beside the running ones and swapped in
atomically; a config or plugin that does not load leaves the running one
in place and the error is logged in full. GET /metrics on the admin
listener serves Prometheus metrics. SIGINT or SIGTERM stops
accepting, lets requests in flight finish within server.shutdown_timeout,
and exits 0.
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", serveHelp, stdout)
	path := fs.String("config", "config.toml", "config file to serve")
	watch := fs.Bool("watch", false, "reload when the config file or a plugin's .wasm file changes (checked every second)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	// Catch signals first: a supervisor may signal as soon as we start.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cfg, err := config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	s := &server{path: *path, log: log, metrics: metrics.New(version), journal: journal.New(journal.DefaultSize)}
	if err := s.start(ctx, cfg); err != nil {
		log.Error("hookgate could not start", "err", err)
		s.stop()
		return 1
	}
	if *watch {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.watch(wctx, watchInterval)
	}
	code := 0
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "context done")
			done = true
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload(ctx, "SIGHUP")
				continue
			}
			log.Info("stopping", "signal", sig.String())
			done = true
		case err := <-s.failed:
			log.Error("a listener failed; stopping", "err", err)
			code = 1
			done = true
		}
	}
	if !s.stop() {
		code = 1
	}
	return code
}

// server is one running `hookgate serve`: the pieces it started, in order,
// so stop can undo exactly those.
type server struct {
	path   string
	log    *slog.Logger
	host   *transforms.Host
	gw     *gateway.Gateway
	admin  *admin.Admin
	failed chan error

	store      *queue.Store         // nil until a config has an async route
	dispatcher *dispatch.Dispatcher // sends what store holds
	metrics    *metrics.Registry    // one per process: counters carry on across reloads
	journal    *journal.Journal     // recent events for /admin/events/{id}; in memory only

	// reloadMu serializes reloads (SIGHUP, /admin/reload, --watch) with
	// each other, with closing the plugins they retire, and with stop.
	reloadMu sync.Mutex
	stopping bool
	// oldTables counts route tables a reload replaced that requests may
	// still use; plugins a reload replaced are closed once it is 0.
	oldTables int
	// keepRetired is set when a reload failed after it had loaded new
	// plugins into the host: the running table may use plugins the host
	// now counts as retired, so none is closed until the process stops.
	keepRetired bool
	loaded      map[string]pluginKey // what the host holds, by plugin name

	test testRunner // POST /admin/routes/{name}/test

	// liveMu guards host, store and dispatcher for the admin handlers: a
	// reload may create them while an admin request reads them.
	liveMu sync.RWMutex
}

// live returns the plugin host and the queue (nil when not started).
func (s *server) live() (*transforms.Host, *queue.Store, *dispatch.Dispatcher) {
	s.liveMu.RLock()
	defer s.liveMu.RUnlock()
	return s.host, s.store, s.dispatcher
}

func (s *server) start(ctx context.Context, cfg *config.Config) error {
	s.failed = make(chan error, 2)
	deps, err := s.deps(ctx, cfg, false)
	if err != nil {
		return err
	}
	gw, err := gateway.New(cfg, deps)
	if err != nil {
		deps.Targets.Close()
		return err
	}
	s.gw = gw
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("ingest listener: %w; is another process using %s? change server.listen", err, cfg.Server.Listen)
	}
	var aln net.Listener
	if cfg.Admin.Listen != "" {
		if aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("admin listener: %w; is another process using %s? change admin.listen", err, cfg.Admin.Listen)
		}
		s.admin = admin.New(cfg.Admin, s.log)
		s.admin.Handle("GET /admin/routes", admin.RoutesHandler(gw.Config))
		s.admin.Handle("GET /metrics", s.metrics.Handler())
		s.registerAdmin(s.admin)
		registerPprof(s.admin)
		if s.dispatcher != nil {
			s.dispatcher.Register(s.admin)
		}
	}
	go func() {
		if err := gw.Serve(ln); err != nil {
			s.failed <- fmt.Errorf("ingest: %w", err)
		}
	}()
	s.log.Info("listening", "listener", "ingest", "addr", ln.Addr().String(), "config", cfg.Path, "routes", len(cfg.Routes), "targets", len(cfg.Targets))
	if s.admin != nil {
		go func() {
			if err := s.admin.Serve(aln); err != nil {
				s.failed <- fmt.Errorf("admin: %w", err)
			}
		}()
		s.admin.SetReady(true)
		s.log.Info("listening", "listener", "admin", "addr", aln.Addr().String())
	}
	return nil
}

// registerPprof adds Go's profiling endpoints under /debug/pprof/ on the
// admin listener, registered explicitly (never through net/http/pprof's
// init on http.DefaultServeMux, which nothing here serves). They sit
// behind the admin token like every admin endpoint: a profile shows
// memory contents' shape and the command line, so it is an operator's.
//
//	curl -H "Authorization: Bearer $TOKEN" 127.0.0.1:9090/debug/pprof/profile?seconds=10 > cpu.pprof
func registerPprof(a *admin.Admin) {
	a.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, ...
	a.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	a.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	a.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// deps builds what a route table needs for cfg: target clients, chains and
// the queue. The plugin host is one per process: a reload loads changed
// plugins into it, so plugin key-value state survives a reload.
func (s *server) deps(ctx context.Context, cfg *config.Config, reloading bool) (gateway.Deps, error) {
	targets, err := target.NewSet(cfg.Targets)
	if err != nil {
		return gateway.Deps{}, err
	}
	// Release runs once no request uses the table any more (after a reload
	// replaced it, or at shutdown).
	release := func() {
		targets.Close()
		go s.tableRetired()
	}
	deps := gateway.Deps{Targets: targets, Logger: s.log, Release: release, Metrics: s.metrics, Journal: s.journal}
	if len(cfg.Plugins) > 0 {
		if s.host == nil {
			host, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir, Logger: s.log, Observer: s.metrics})
			if err != nil {
				targets.Close()
				return gateway.Deps{}, err
			}
			s.liveMu.Lock()
			s.host = host
			s.liveMu.Unlock()
			s.metrics.SetPluginPool(poolStats(host))
		}
		start := time.Now()
		changed, err := s.changedPlugins(cfg)
		if err != nil {
			targets.Close()
			return gateway.Deps{}, err
		}
		if reloading && len(changed) > 0 {
			// Compile and start the changed plugins in a scratch host
			// first: a module that does not load then fails here, before
			// the running host is touched.
			if err := checkPlugins(ctx, cfg, changed); err != nil {
				targets.Close()
				return gateway.Deps{}, err
			}
		}
		if err := loadPlugins(ctx, s.host, cfg, changed); err != nil {
			if reloading {
				s.keepRetired = true
			}
			targets.Close()
			return gateway.Deps{}, err
		}
		s.remember(cfg, changed)
		// A cold compile takes seconds per plugin: say where the time went.
		s.log.Info("plugins loaded", "plugins", len(cfg.Plugins), "took", time.Since(start).Round(time.Millisecond), "cache_dir", cfg.Transforms.CacheDir)
		deps.Chains = chainBuilder{host: s.host, journal: s.journal, log: s.log}
	}
	q, err := s.startQueue(cfg, targets)
	if err != nil {
		if reloading && len(cfg.Plugins) > 0 {
			s.keepRetired = true // the host may hold plugins this reload loaded
		}
		targets.Close()
		return gateway.Deps{}, err
	}
	deps.Queue = q
	return deps, nil
}

// reload loads the config file again and swaps it in; why says what
// asked (SIGHUP, admin, watch). Any failure leaves the running config
// serving; the error is logged in full and returned.
func (s *server) reload(ctx context.Context, why string) (*config.Config, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.stopping {
		return nil, errors.New("hookgate is shutting down; nothing was reloaded")
	}
	s.log.Info("reloading", "config", s.path, "by", why)
	start := time.Now()
	cfg, err := s.swap(ctx)
	if err != nil {
		s.log.Error("reload failed; still serving the previous config", "config", s.path, "by", why, "err", err)
		return nil, err
	}
	if cfg.Server != s.gw.ServerConfig() {
		s.log.Warn("reloaded; [server] changes (listen, timeouts, limits) take effect on restart")
	}
	s.log.Info("reloaded", "config", cfg.Path, "routes", len(cfg.Routes), "targets", len(cfg.Targets), "plugins", len(cfg.Plugins),
		"took", time.Since(start).Round(time.Millisecond))
	return cfg, nil
}

// swap does reload's work; call it with reloadMu held.
func (s *server) swap(ctx context.Context) (*config.Config, error) {
	cfg, err := config.Load(s.path)
	if err != nil {
		return nil, err
	}
	hadHost := s.host != nil
	deps, err := s.deps(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	s.oldTables++ // the running table, once the swap is made
	if err := s.gw.Reload(cfg, deps); err != nil {
		s.oldTables--
		deps.Targets.Close() // not Release: this table never served
		if hadHost && len(cfg.Plugins) > 0 {
			s.keepRetired = true
		}
		return nil, err
	}
	if s.dispatcher != nil {
		// Queued deliveries for targets that still exist keep flowing, now
		// with the new clients and settings.
		rctx, cancel := context.WithTimeout(ctx, s.gw.ServerConfig().ShutdownTimeout)
		err := s.dispatcher.Reload(rctx, deps.Targets, cfg.Targets)
		cancel()
		if err != nil {
			s.log.Warn("reload: delivery workers of the old config did not stop in time", "err", err)
		}
	}
	return cfg, nil
}

// tableRetired runs once the requests of a replaced route table are done:
// when no older table is left, the plugins reloads replaced are closed.
func (s *server) tableRetired() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.stopping {
		return // stop closes the host, retired plugins included
	}
	s.oldTables--
	if s.oldTables > 0 || s.keepRetired || s.host == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.host.CloseRetired(ctx); err != nil {
		s.log.Warn("closing replaced plugins", "err", err)
		return
	}
	s.log.Info("the previous config's requests have finished; its plugins and target clients are closed")
}

// stop shuts everything down in reverse order of start; false when a
// part did not stop cleanly.
func (s *server) stop() bool {
	s.reloadMu.Lock()
	s.stopping = true // a reload asked for from now on is refused
	s.reloadMu.Unlock()
	ok := true
	if s.admin != nil {
		s.admin.SetReady(false)
	}
	if s.gw != nil {
		// Shutdown bounds itself by server.shutdown_timeout.
		if err := s.gw.Shutdown(context.Background()); err != nil {
			s.log.Error("shutdown", "err", err)
			ok = false
		}
	}
	// After ingest: nothing enqueues any more.
	limit := 15 * time.Second
	if s.gw != nil && s.gw.ServerConfig().ShutdownTimeout > 0 {
		limit = s.gw.ServerConfig().ShutdownTimeout
	}
	qctx, qcancel := context.WithTimeout(context.Background(), limit)
	if !s.stopQueue(qctx) {
		ok = false
	}
	qcancel()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.admin.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("admin shutdown", "err", err)
		}
		cancel()
	}
	s.test.close()
	if s.host != nil {
		if err := s.host.Close(context.Background()); err != nil {
			s.log.Warn("closing the transforms host", "err", err)
		}
	}
	if ok {
		s.log.Info("stopped")
	}
	return ok
}
