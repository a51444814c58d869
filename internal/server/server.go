// Package server builds and runs a hookgate from a config: the one
// composition root. It wires the ingest server (gateway), the plugin host
// (transforms), the durable queue and its delivery workers (queue,
// dispatch), the recent-events journal, the metrics and the admin API,
// and it owns reload. cmd/hookgate is the command line around it.
//
//	s := server.New(cfg, server.Options{Path: "config.toml", Logger: log})
//	if err := s.Start(ctx); err != nil { ... }
//	s.Reload(ctx, "SIGHUP")   // any time; a config that does not load changes nothing
//	s.Stop()                  // drains, bounded by server.shutdown_timeout
//
// Lifecycle:
//  1. New records the config; nothing is built yet.
//  2. Start builds the first generation (target clients, plugin chains,
//     route table, and the queue and delivery lanes when a route is
//     async; see generation), listens on server.listen and admin.listen,
//     and marks /readyz ready.
//  3. Reload loads the config file again, builds a generation beside the
//     running one and swaps; the old one's plugins and clients close once
//     its last request and delivery attempt are done.
//  4. Stop refuses reloads, drains ingest, stops the delivery workers,
//     waits for the generations to retire, and closes the queue, the
//     admin listener and the plugin host.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/journal"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/internal/console"
	"github.com/hookgate/hookgate/transforms"
)

// Options are what a Server needs besides the config.
type Options struct {
	// Path is the config file Reload reads again and --watch watches.
	Path string
	// Version is the build's version, shown by hookgate_build_info.
	Version string
	// Logger is the process logger (NewLogger); nil: slog.Default().
	Logger *slog.Logger
	// QueueFS is the filesystem the queue lives on; nil: the real one.
	// Tests pass one that fills up or fails (gateway/queue/fillfs).
	QueueFS vfs.FS
	// Exit ends the process when the queue's storage fails (see
	// storageFailed); nil: os.Exit. Tests pass one that records the code.
	Exit func(code int)
}

// Server is one running hookgate: the pieces Start started, in order, so
// Stop can undo exactly those.
type Server struct {
	cfg    *config.Config // the config of Start; Config() is the one serving
	path   string
	log    *slog.Logger
	gw     *gateway.Gateway
	admin  *admin.Admin
	ui     *console.Console // the web console on the admin listener
	failed chan error

	// Made the first time a config needs them, read by the admin handlers.
	host       atomic.Pointer[transforms.Host]
	store      atomic.Pointer[openQueue]           // the queue engine, once opened
	dispatcher atomic.Pointer[dispatch.Dispatcher] // sends what store holds

	metrics *metrics.Registry // one per process: counters carry on across reloads
	journal *journal.Journal  // recent events for /admin/events/{id}; in memory only

	// mu is the one reload lock: it serializes Start's and Reload's
	// build and swap, a generation's retirement, and Stop's refusal of
	// further reloads. The fields below it are under it.
	mu       sync.Mutex
	stopping bool
	cur      *generation
	open     map[*generation]bool // made current and not yet retired
	loaded   map[string]pluginKey // what the host holds, by plugin name
	openWG   sync.WaitGroup       // one per open generation

	test testRunner // POST /admin/routes/{name}/test

	queueFS vfs.FS         // Options.QueueFS
	exit    func(code int) // Options.Exit
}

// New returns a Server for cfg; nothing is built or listens until Start.
func New(cfg *config.Config, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, path: opts.Path, log: log, metrics: metrics.New(opts.Version), journal: journal.New(journal.DefaultSize),
		failed: make(chan error, 2), open: map[*generation]bool{}, queueFS: opts.QueueFS, exit: opts.Exit}
}

// Failed delivers the error of a listener that stopped serving on its
// own; the process should then Stop.
func (s *Server) Failed() <-chan error { return s.failed }

// Config is the configuration being served: Start's, then each
// successful Reload's.
func (s *Server) Config() *config.Config {
	if s.gw == nil {
		return s.cfg
	}
	return s.gw.Config()
}

// live returns the plugin host and the queue (nil when not started).
func (s *Server) live() (*transforms.Host, queue.Engine, *dispatch.Dispatcher) {
	var e queue.Engine
	if q := s.store.Load(); q != nil {
		e = q.Engine
	}
	return s.host.Load(), e, s.dispatcher.Load()
}

// Start builds the route table and listens. On an error, call Stop to
// undo what was started.
func (s *Server) Start(ctx context.Context) error {
	cfg := s.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkListen(cfg); err != nil {
		return err
	}
	g, deps, err := s.build(ctx, cfg)
	if err != nil {
		return err
	}
	gw, err := gateway.New(cfg, deps)
	if err != nil {
		s.discard(g)
		return err
	}
	s.gw = gw
	s.commit(g)
	s.logWarnings(cfg)
	ln, aln, err := listen(cfg)
	if err != nil {
		return err
	}
	if aln != nil {
		if s.admin, err = admin.New(cfg.Admin, s.log, admin.Describer(gw.Config), s, s.console(gw)); err != nil {
			ln.Close()
			aln.Close()
			return err
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
		s.admin.SetCheck(s.queueHealth)
		s.admin.SetReady(true)
		s.log.Info("listening", "listener", "admin", "addr", aln.Addr().String())
	}
	return nil
}

// listen binds the ingest listener and, when configured, the admin one.
func listen(cfg *config.Config) (ln, aln net.Listener, err error) {
	if ln, err = net.Listen("tcp", cfg.Server.Listen); err != nil {
		return nil, nil, fmt.Errorf("ingest listener: %w; is another process using %s? change server.listen", err, cfg.Server.Listen)
	}
	if cfg.Admin.Listen != "" {
		if aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("admin listener: %w; is another process using %s? change admin.listen", err, cfg.Admin.Listen)
		}
	}
	return ln, aln, nil
}

// checkListen binds the listen addresses and lets them go again, so that
// a port in use fails Start at once, not after seconds of compiling
// plugins, opening the queue or waiting for NATS. They are not kept
// through the build: a bound listener would hold senders, and pass TCP
// health checks, with nothing answering for as long as the build takes,
// then reset them all if it fails; refused, a sender retries. A port
// taken in between fails at the real bind, as before.
func checkListen(cfg *config.Config) error {
	ln, aln, err := listen(cfg)
	if err != nil {
		return err
	}
	ln.Close()
	if aln != nil {
		aln.Close()
	}
	return nil
}

// logWarnings logs each warning of the config about to serve, one line
// each: what works but deserves a look (a secret written in the file, a
// dedupe that can never match), for operators who never run check.
func (s *Server) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		s.log.Warn("config warning", "config", cfg.Path, "warning", w)
	}
}

// Stop shuts everything down in reverse order of Start, each part bounded
// by server.shutdown_timeout; the error says which parts did not stop
// cleanly (each is also logged).
func (s *Server) Stop() error {
	s.mu.Lock()
	s.stopping = true // a reload asked for from now on is refused
	cur := s.cur
	s.mu.Unlock()
	var errs []error
	if s.admin != nil {
		s.admin.SetReady(false)
	}
	if s.gw != nil {
		// Shutdown bounds itself by server.shutdown_timeout.
		if err := s.gw.Shutdown(context.Background()); err != nil {
			s.log.Error("shutdown", "err", err)
			errs = append(errs, err)
		}
	}
	// After ingest: nothing enqueues any more.
	limit := 15 * time.Second
	if s.gw != nil && s.gw.ServerConfig().ShutdownTimeout > 0 {
		limit = s.gw.ServerConfig().ShutdownTimeout
	}
	qctx, qcancel := context.WithTimeout(context.Background(), limit)
	if err := s.stopQueue(qctx, cur); err != nil {
		errs = append(errs, err)
	}
	qcancel()
	if s.admin != nil {
		s.ui.Close() // ends the console's live streams, so the admin server stops at once
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.admin.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("admin shutdown", "err", err)
		}
		cancel()
	}
	s.test.close()
	if host := s.host.Load(); host != nil {
		if err := host.Close(context.Background()); err != nil {
			s.log.Warn("closing the transforms host", "err", err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.log.Info("stopped")
	return nil
}

// NewLogger builds the process logger from [log], writing to w.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.ToLower(c.Format) == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// recorder is what the gateway and the dispatcher record events to: the
// log lines (access lines as cfg says), the metrics and the journal.
func (s *Server) recorder(cfg *config.Config) record.Recorder {
	return record.Tee(record.Log(s.log, cfg.Log.Access), s.metrics.Recorder(), s.journal)
}
