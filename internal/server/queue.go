package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
)

func hasAsync(cfg *config.Config) bool {
	for _, r := range cfg.Routes {
		if r.Mode != config.ModeSync {
			return true
		}
	}
	return false
}

// startQueue opens the durable queue and starts the dispatcher, with no
// lanes yet, the first time a config has an async route; once running, it
// returns the same dispatcher. Each generation builds its own lanes and
// swaps them in (see commit). The [queue] settings are read once;
// changing them takes a restart. The dispatcher is the gateway's Queue as
// it is: a full queue's error wraps delivery.ErrQueueFull, which ingest
// answers with 503 and Retry-After.
func (s *Server) startQueue(cfg *config.Config) (*dispatch.Dispatcher, error) {
	if d := s.dispatcher.Load(); d != nil {
		return d, nil
	}
	if !hasAsync(cfg) {
		return nil, nil
	}
	store, err := queue.Open(queue.Options{Path: cfg.Queue.Path, Sync: cfg.Queue.Sync, MaxDepth: cfg.Queue.MaxDepth,
		MaxBytes: cfg.Queue.MaxBytes, MinFree: cfg.Queue.MinFree, Logger: s.log, FS: s.queueFS, OnFatal: s.storageFailed})
	if err != nil {
		return nil, fmt.Errorf("opening the queue at %s: %w; check queue.path, or that no other hookgate uses it", cfg.Queue.Path, err)
	}
	d := dispatch.New(store, nil, nil, dispatch.Options{Logger: s.log, Workers: cfg.Queue.Workers, Recorder: s.recorder(cfg)})
	s.store.Store(store)
	s.dispatcher.Store(d)
	s.metrics.SetQueueStats(queueStats(d))
	d.Start()
	s.log.Info("queue open", "path", cfg.Queue.Path, "sync", cfg.Queue.Sync)
	return d, nil
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
