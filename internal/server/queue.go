package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

func hasAsync(cfg *config.Config) bool {
	for _, r := range cfg.Routes {
		if r.Mode != config.ModeSync {
			return true
		}
	}
	return false
}

// startQueue opens the durable queue and starts the delivery workers the
// first time a config has an async route; once running, it returns the
// same queue (a reload hands the dispatcher its new target clients after
// the gateway took the new config, see Server.Reload). The [queue]
// settings are read once; changing them takes a restart. The dispatcher
// is the gateway's Queue as it is: a full queue's error wraps
// delivery.ErrQueueFull, which ingest answers with 503 and Retry-After.
func (s *Server) startQueue(cfg *config.Config, targets *target.Set) (gateway.Queue, error) {
	if s.dispatcher != nil {
		return s.dispatcher, nil
	}
	if !hasAsync(cfg) {
		return nil, nil
	}
	store, err := queue.Open(queue.Options{Path: cfg.Queue.Path, Sync: cfg.Queue.Sync, MaxDepth: cfg.Queue.MaxDepth,
		MaxBytes: cfg.Queue.MaxBytes, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("opening the queue at %s: %w; check queue.path, or that no other hookgate uses it", cfg.Queue.Path, err)
	}
	d := dispatch.New(store, targets, cfg.Targets, dispatch.Options{Logger: s.log, Workers: cfg.Queue.Workers, Metrics: s.metrics, Journal: s.journal})
	s.liveMu.Lock()
	s.store, s.dispatcher = store, d
	s.liveMu.Unlock()
	s.metrics.SetQueueStats(queueStats(store, d))
	d.Start()
	s.log.Info("queue open", "path", cfg.Queue.Path, "sync", cfg.Queue.Sync)
	return d, nil
}

// stopQueue stops the workers (attempts in flight finish or are released)
// and closes the store.
func (s *Server) stopQueue(ctx context.Context) error {
	var errs []error
	if s.dispatcher != nil {
		if err := s.dispatcher.Stop(ctx); err != nil {
			s.log.Warn("delivery workers did not stop in time; unsent deliveries go out after the restart", "err", err)
			errs = append(errs, err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Error("closing the queue", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
