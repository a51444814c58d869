package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/rawsock"
	"github.com/hookgate/hookgate/internal/server"
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
	log := server.NewLogger(cfg.Log, stderr)
	if on, why := rawsock.Batching(); !on {
		// Not an error: a kernel or container without io_uring costs a
		// system call per socket read and write (internal/rawsock).
		log.Info("network: reads and writes are not batched", "reason", why)
	}
	s := server.New(cfg, server.Options{Path: *path, Version: version, Logger: log})
	stopped, err := startStoppable(ctx, s, sigs, log)
	if err != nil || stopped {
		code := 0
		if err != nil && !stopped {
			log.Error("hookgate could not start", "err", err)
			code = 1
		}
		if s.Stop() != nil {
			code = 1
		}
		return code
	}
	if *watch {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.Watch(wctx, server.WatchInterval)
	}
	code := 0
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "context done")
			done = true
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.Reload(ctx, "SIGHUP")
				continue
			}
			log.Info("stopping", "signal", sig.String())
			done = true
		case err := <-s.Failed():
			log.Error("a listener failed; stopping", "err", err)
			code = 1
			done = true
		}
	}
	if err := s.Stop(); err != nil {
		code = 1
	}
	return code
}

// startStoppable starts s; a SIGINT or SIGTERM meanwhile stops the start
// early (stopped true), as it stops a running gateway: a start may wait
// for a NATS cluster that is not ready yet (up to half a minute), and a
// supervisor that asks hookgate to stop must not have to kill it. A SIGHUP
// meanwhile is put back for the serving loop, which reads the config
// again as soon as hookgate runs.
func startStoppable(ctx context.Context, s *server.Server, sigs chan os.Signal, log *slog.Logger) (stopped bool, err error) {
	startCtx, cancel := context.WithCancel(ctx)
	started := make(chan error, 1)
	go func() { started <- s.Start(startCtx) }()
	hup := false
	defer func() {
		if hup {
			select {
			case sigs <- syscall.SIGHUP:
			default: // another signal is waiting there, which wins anyway
			}
		}
	}()
	for {
		select {
		case err := <-started:
			// What Start built (plugins, the queue) may keep its context:
			// it ends with the caller's, not now.
			context.AfterFunc(ctx, cancel)
			return false, err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				hup = true
				continue
			}
			log.Info("stopping while starting", "signal", sig.String())
			cancel()
			err := <-started
			return true, err
		}
	}
}
