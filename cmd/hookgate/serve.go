package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/transforms"
)

const serveHelp = `Usage: hookgate serve --config FILE

Run the gateway: listen on server.listen for webhooks, route each one by
method and path, run the route's transforms, and forward the deliveries to
the targets (sync routes) or queue them durably (async routes). The admin
listener (admin.listen) serves /healthz, /readyz and the /admin API.
SIGHUP reloads the config file: a config that does not load leaves the
running one in place and the error is logged. SIGINT or SIGTERM stops
accepting, lets requests in flight finish within server.shutdown_timeout,
and exits 0.
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", serveHelp, stdout)
	path := fs.String("config", "config.toml", "config file to serve")
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
	s := &server{path: *path, log: log}
	if err := s.start(ctx, cfg); err != nil {
		log.Error("hookgate could not start", "err", err)
		s.stop()
		return 1
	}
	code := 0
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "context done")
			done = true
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload(ctx)
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
}

func (s *server) start(ctx context.Context, cfg *config.Config) error {
	s.failed = make(chan error, 2)
	deps, err := s.deps(ctx, cfg)
	if err != nil {
		return err
	}
	gw, err := gateway.New(cfg, deps)
	if err != nil {
		deps.Release()
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

// deps builds what a route table needs for cfg: target clients, chains and
// the queue. The plugin host is one per process: a reload loads changed
// plugins into it, so plugin key-value state survives a reload.
func (s *server) deps(ctx context.Context, cfg *config.Config) (gateway.Deps, error) {
	targets, err := target.NewSet(cfg.Targets)
	if err != nil {
		return gateway.Deps{}, err
	}
	deps := gateway.Deps{Targets: targets, Logger: s.log, Release: targets.Close}
	if len(cfg.Plugins) > 0 {
		if s.host == nil {
			host, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir, Logger: s.log})
			if err != nil {
				targets.Close()
				return gateway.Deps{}, err
			}
			s.host = host
		}
		start := time.Now()
		if err := loadPlugins(ctx, s.host, cfg, nil); err != nil {
			targets.Close()
			return gateway.Deps{}, err
		}
		// A cold compile takes seconds per plugin: say where the time went.
		s.log.Info("plugins loaded", "plugins", len(cfg.Plugins), "took", time.Since(start).Round(time.Millisecond), "cache_dir", cfg.Transforms.CacheDir)
		deps.Chains = newChainBuilder(s.host)
	}
	q, err := s.startQueue(cfg, targets)
	if err != nil {
		targets.Close()
		return gateway.Deps{}, err
	}
	deps.Queue = q
	return deps, nil
}

// reload loads the config file again and swaps it in. Any failure leaves
// the running config serving; the error is logged in full.
func (s *server) reload(ctx context.Context) {
	s.log.Info("reloading", "config", s.path)
	cfg, err := config.Load(s.path)
	if err != nil {
		s.log.Error("reload failed; still serving the previous config", "err", err)
		return
	}
	deps, err := s.deps(ctx, cfg)
	if err != nil {
		s.log.Error("reload failed; still serving the previous config", "err", err)
		return
	}
	if err := s.gw.Reload(cfg, deps); err != nil {
		deps.Release()
		s.log.Error("reload failed; still serving the previous config", "err", err)
		return
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
	if cfg.Server != s.gw.ServerConfig() {
		s.log.Warn("reloaded; [server] changes (listen, timeouts, limits) take effect on restart")
	}
	s.log.Info("reloaded", "config", cfg.Path, "routes", len(cfg.Routes), "targets", len(cfg.Targets))
}

// stop shuts everything down in reverse order of start; false when a
// part did not stop cleanly.
func (s *server) stop() bool {
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
