package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/transforms"
)

// deps builds what a route table needs for cfg: target clients, chains and
// the queue. The plugin host is one per process: a reload loads changed
// plugins into it, so plugin key-value state survives a reload.
func (s *Server) deps(ctx context.Context, cfg *config.Config, reloading bool) (gateway.Deps, error) {
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
		deps.Chains = Chains{Host: s.host, Journal: s.journal, Log: s.log}
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

// Reload loads the config file again and swaps it in; why says what
// asked (SIGHUP, admin, watch), for the log. Any failure leaves the
// running config serving; the error is logged in full and returned.
func (s *Server) Reload(ctx context.Context, why string) (*config.Config, error) {
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
func (s *Server) swap(ctx context.Context) (*config.Config, error) {
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
func (s *Server) tableRetired() {
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

// pluginKey identifies what the host holds for a plugin: the module's
// hash and its limits. Equal keys mean Load would do nothing.
type pluginKey struct {
	sum  [32]byte
	spec config.Plugin
}

// changedPlugins reads the plugins of cfg and returns the names of those
// the host does not hold as they are now.
func (s *Server) changedPlugins(cfg *config.Config) (map[string]bool, error) {
	changed := map[string]bool{}
	for _, p := range cfg.Plugins {
		wasm, err := os.ReadFile(p.Wasm)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: cannot read %s: %w; build the plugins (make plugins) or fix wasm in the config", p.Name, p.Wasm, err)
		}
		if k, ok := s.loaded[p.Name]; !ok || k != (pluginKey{sha256.Sum256(wasm), p}) {
			changed[p.Name] = true
		}
	}
	return changed, nil
}

// remember records that the host now holds the plugins named in changed
// as cfg has them.
func (s *Server) remember(cfg *config.Config, changed map[string]bool) {
	if s.loaded == nil {
		s.loaded = map[string]pluginKey{}
	}
	for _, p := range cfg.Plugins {
		if !changed[p.Name] {
			continue
		}
		if wasm, err := os.ReadFile(p.Wasm); err == nil {
			s.loaded[p.Name] = pluginKey{sha256.Sum256(wasm), p}
		}
	}
}

// checkPlugins compiles and starts the plugins named in only in a
// throwaway host, so a module that does not load is refused before the
// running host is touched. The compilation cache (transforms.cache_dir)
// makes the real load that follows cheap.
func checkPlugins(ctx context.Context, cfg *config.Config, only map[string]bool) error {
	host, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir})
	if err != nil {
		return err
	}
	defer host.Close(context.Background())
	var errs []error
	for _, p := range cfg.Plugins {
		if !only[p.Name] {
			continue
		}
		// One plugin at a time, every failure reported: the person reloading
		// fixes them all in one go.
		if err := loadPlugins(ctx, host, cfg, map[string]bool{p.Name: true}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
