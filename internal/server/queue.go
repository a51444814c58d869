package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/queue/natsq"
)

func hasAsync(cfg *config.Config) bool {
	for _, r := range cfg.Routes {
		if r.Mode != config.ModeSync {
			return true
		}
	}
	return false
}

// openQueue is the queue engine the server opened, and the dedupe keys
// it shares with other gateways (nil for the embedded store, which no
// other gateway uses).
type openQueue struct {
	queue.Engine
	dedupe gateway.SharedDedupe
}

// OpenQueue opens the queue backend cfg names: the embedded Pebble store
// at queue.path, or the NATS JetStream stream of [queue.nats]. Its
// errors say what is wrong and what to check. hookgate replay opens the
// queue the same way.
//
// A tool (hookgate replay) opens it as a visitor: on NATS the gateways do
// not count it as one of them.
//
// ctx stops a NATS open that waits for a cluster not ready to serve yet.
func OpenQueue(ctx context.Context, cfg *config.Config, log *slog.Logger, fs vfs.FS, onFatal func(error), visitor bool) (queue.Engine, error) {
	q := cfg.Queue
	if q.Backend == config.QueueBackendNATS {
		e, err := natsq.OpenContext(ctx, q.NATS, natsq.Options{MaxDepth: q.MaxDepth, MaxBytes: q.MaxBytes, Logger: log, AckWait: q.NATS.Lease, Visitor: visitor})
		if err != nil {
			return nil, fmt.Errorf("opening the queue on NATS JetStream: %w", err)
		}
		return e, nil
	}
	store, err := queue.Open(queue.Options{Path: q.Path, Sync: q.Sync, MaxDepth: q.MaxDepth,
		MaxBytes: q.MaxBytes, MinFree: q.MinFree, Logger: log, FS: fs, OnFatal: onFatal})
	if err != nil {
		return nil, fmt.Errorf("opening the queue at %s: %w; check queue.path, or that no other hookgate uses it", q.Path, err)
	}
	return store, nil
}

// startQueue opens the durable queue and starts the dispatcher, with no
// lanes yet, the first time a config has an async route (with the NATS
// backend, at once: the config asked for it, a server that cannot be
// reached must fail the start, and sync routes share dedupe keys through
// it too); once running, it returns the same dispatcher. Each generation
// builds its own lanes and swaps them in (see commit). The [queue]
// settings are read once; changing them takes a restart. The dispatcher
// is the gateway's Queue as it is: a full queue's error wraps
// delivery.ErrQueueFull, which ingest answers with 503 and Retry-After.
func (s *Server) startQueue(ctx context.Context, cfg *config.Config) (*dispatch.Dispatcher, error) {
	if d := s.dispatcher.Load(); d != nil {
		return d, nil
	}
	if !hasAsync(cfg) && cfg.Queue.Backend != config.QueueBackendNATS {
		return nil, nil
	}
	store, err := OpenQueue(ctx, cfg, s.log, s.queueFS, s.storageFailed, false)
	if err != nil {
		return nil, err
	}
	q := &openQueue{Engine: store}
	if e, ok := store.(*natsq.Engine); ok {
		if dd := e.Dedupe(); dd != nil { // never a nil pointer in the interface
			q.dedupe = dd
		}
	}
	d := dispatch.New(store, nil, nil, dispatch.Options{Logger: s.log, Workers: cfg.Queue.Workers, Recorder: s.recorder(cfg)})
	s.store.Store(q)
	s.dispatcher.Store(d)
	s.metrics.SetQueueStats(queueStats(d))
	d.Start()
	if cfg.Queue.Backend == config.QueueBackendNATS {
		s.log.Info("queue open", "backend", "nats", "urls", strings.Join(cfg.Queue.NATS.URLs, ","), "stream", cfg.Queue.NATS.Stream, "replicas", cfg.Queue.NATS.Replicas)
	} else {
		s.log.Info("queue open", "path", cfg.Queue.Path, "sync", cfg.Queue.Sync)
	}
	return d, nil
}

// sharedDedupe is the dedupe store shared with other gateways, or nil.
func (s *Server) sharedDedupe() gateway.SharedDedupe {
	if q := s.store.Load(); q != nil && q.dedupe != nil {
		return q.dedupe
	}
	return nil
}

// stopQueue stops the delivery workers (attempts in flight finish or are
// released), waits, bounded by ctx, for every generation to retire, and
// closes the store.
func (s *Server) stopQueue(ctx context.Context, cur *generation) error {
	var errs []error
	if d := s.dispatcher.Load(); d != nil {
		err := d.Stop(ctx)
		if err != nil {
			s.log.Warn("delivery workers did not stop in time; unsent deliveries go out after the restart", "err", err)
			errs = append(errs, err)
		}
		if cur != nil && cur.lanes != nil {
			go func() {
				cur.lanes.Wait()
				cur.lanesRef.Release()
			}()
		}
	}
	done := make(chan struct{})
	go func() {
		s.openWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("a config's requests or delivery attempts are still running at shutdown; closing anyway")
	}
	if store := s.store.Load(); store != nil {
		if err := store.Close(); err != nil {
			s.log.Error("closing the queue", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// queueHealth is the queue's part of /readyz: not ready while the store
// is low on disk space (ingest answers 503 queue_unavailable meanwhile)
// or has failed.
func (s *Server) queueHealth() error {
	if store := s.store.Load(); store != nil {
		return store.Health()
	}
	return nil
}

// storageFailed is the queue's OnFatal: a write to the store failed (a
// full or failing disk), and Pebble does not go on after that. The
// process says why in one line and exits 1 at once, for its supervisor to
// restart it: a graceful stop could wait forever on the store, and exiting
// now is what kill -9 does, which loses nothing acknowledged with
// [queue] sync = "always" (every 202 was given after its deliveries were
// synced); with "batch", what was acknowledged since the last sync (at
// most about a second) may be lost, as the README says of batch mode. After the restart the
// queue opens what is on disk; if the disk is still full, Open fails and
// says so, until space is freed.
func (s *Server) storageFailed(err error) {
	s.log.Error("the queue's storage failed; exiting so a supervisor restarts hookgate (free disk space if it is full)", "err", err)
	if s.exit != nil {
		s.exit(1)
		return
	}
	os.Exit(1)
}
