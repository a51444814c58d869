package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/transforms"
)

// generation is everything one config serves with: its target clients,
// the plugins its chains run, its route table (held by the gateway) and
// its delivery lanes. It is built by build, made current by commit, and
// retired by retire, in that order and nowhere else.
//
// Its one reference count is the route table's (gateway.Ref): "current"
// until a reload replaces it, one per request in flight on it, and one for
// its lanes until they have stopped. When it reaches 0 the gateway calls
// Deps.Release, which retires the generation: its target clients close,
// then the plugins a reload replaced that no open generation holds.
type generation struct {
	cfg     *config.Config
	targets *target.Set
	plugins *transforms.Plugins  // what its chains run; nil without [[plugin]]
	changed map[string]pluginKey // plugins this build loaded into the host, as it loaded them
	lanes   *dispatch.Lanes      // nil until a config has an async route
	// lanesRef is the lanes' reference: dropped once they have stopped, so
	// the target clients close after the last delivery attempt.
	lanesRef gateway.Ref
	retired  chan struct{} // closed once retire has run
}

// build makes a generation for cfg beside the running one: target
// clients, the changed plugins (compiled in a throwaway host first, then
// loaded into the live one, so plugin key-value state survives a reload),
// the queue the first time a config has an async route, and lanes, built
// but not started. deps are for the gateway, whose Release retires it. On
// error it closes what it made and changes nothing that serves.
func (s *Server) build(ctx context.Context, cfg *config.Config) (_ *generation, deps gateway.Deps, err error) {
	targets, err := target.NewSet(cfg.Targets)
	if err != nil {
		return nil, deps, err
	}
	targets.SetLogger(s.log)
	g := &generation{cfg: cfg, targets: targets, retired: make(chan struct{})}
	defer func() {
		if err != nil {
			s.discard(g)
		}
	}()
	deps = gateway.Deps{Targets: targets, Logger: s.log, Recorder: s.recorder(cfg),
		// Often on a request's goroutine, or inside gateway.Reload: never
		// there.
		Release: func() { go s.retire(g) }}
	if len(cfg.Plugins) > 0 {
		host := s.host.Load()
		if host == nil {
			if host, err = transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir, Logger: s.log, Observer: s.metrics}); err != nil {
				return nil, deps, err
			}
			s.host.Store(host)
			s.metrics.SetPluginPool(poolStats(host))
		}
		start := time.Now()
		mods, err := readPlugins(cfg, nil)
		if err != nil {
			return nil, deps, err
		}
		changed := s.changedPlugins(cfg, mods)
		for name := range mods {
			if _, ok := changed[name]; !ok {
				delete(mods, name) // the host holds it as it is
			}
		}
		if s.cur != nil && len(mods) > 0 {
			// Compile and start the changed plugins in a scratch host
			// first: a module that does not load then fails here, before
			// the running host is touched.
			if err := checkPlugins(ctx, cfg, mods); err != nil {
				return nil, deps, err
			}
		}
		g.changed = changed // from here on, a failure forgets them (discard)
		if err := loadPlugins(ctx, host, cfg, mods); err != nil {
			return nil, deps, err
		}
		g.plugins = host.Plugins()
		// A cold compile takes seconds per plugin: say where the time went.
		s.log.Info("plugins loaded", "plugins", len(cfg.Plugins), "took", time.Since(start).Round(time.Millisecond), "cache_dir", cfg.Transforms.CacheDir)
		deps.Chains = Chains{Host: host}
	}
	q, err := s.startQueue(ctx, cfg)
	if err != nil {
		return nil, deps, err
	}
	if q != nil {
		deps.Queue = q
		deps.Disabled = q // a sync route does not forward to a disabled target either
	}
	deps.Dedupe = s.sharedDedupe()
	if d := s.dispatcher.Load(); d != nil {
		g.lanes = d.Lanes(targets, cfg.Targets)
	}
	return g, deps, nil
}

// discard undoes a build that never served: its clients close, and the
// plugins it loaded are forgotten, so the next reload loads them again
// whatever they are then (the host now holds them under their names, but
// the running chains hold the ones they replaced, which stay open with
// the running generation).
func (s *Server) discard(g *generation) {
	g.targets.Close()
	for name := range g.changed {
		delete(s.loaded, name)
	}
}

// commit makes next, whose table the gateway now serves, the current
// generation: its lanes start and the old ones stop in the background,
// dropping the old generation's lanes reference once no attempt runs.
// Call it with s.mu held, right after gateway.New or gateway.Reload.
func (s *Server) commit(next *generation) {
	s.remember(next.changed)
	s.open[next] = true
	s.openWG.Add(1)
	prev := s.cur
	s.cur = next
	limit := s.shutdownTimeout()
	if prev != nil {
		go func() {
			t := time.NewTimer(limit)
			defer t.Stop()
			select {
			case <-prev.retired:
			case <-t.C:
				s.log.Warn("a replaced config is still in use after server.shutdown_timeout: a request or delivery attempt is stuck; its plugins and clients close when it ends")
			}
		}()
	}
	d := s.dispatcher.Load()
	if d != nil {
		d.SetOperations(next.cfg.Operations) // [operations] follows reloads
	}
	if next.lanes == nil || d == nil {
		return
	}
	ref, ok := s.gw.Acquire()
	if !ok {
		return // shut down: Stop is under way and stops the dispatcher
	}
	old, err := d.Swap(next.lanes)
	if err != nil {
		ref.Release()
		return
	}
	next.lanesRef = ref
	var oldRef gateway.Ref
	if prev != nil {
		oldRef = prev.lanesRef
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		if err := old.Stop(ctx); err != nil {
			s.log.Warn("reload: delivery workers of the old config are still sending; its target clients close when they finish", "err", err)
		}
		old.Wait()
		oldRef.Release()
	}()
}

// retire runs once g's reference count reached 0: no request, lane or
// current pointer uses it any more.
func (s *Server) retire(g *generation) {
	defer s.openWG.Done()
	defer close(g.retired)
	g.targets.Close()
	s.mu.Lock()
	delete(s.open, g)
	keep := make([]*transforms.Plugins, 0, len(s.open))
	for o := range s.open {
		keep = append(keep, o.plugins)
	}
	s.mu.Unlock()
	host := s.host.Load()
	if host == nil || g.plugins == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.CloseRetired(ctx, keep...); err != nil {
		s.log.Warn("closing replaced plugins", "err", err)
		return
	}
	s.log.Info("a replaced config's requests have finished; its plugins and target clients are closed")
}

func (s *Server) shutdownTimeout() time.Duration {
	if s.gw != nil && s.gw.ServerConfig().ShutdownTimeout > 0 {
		return s.gw.ServerConfig().ShutdownTimeout
	}
	return 30 * time.Second
}

// Reload loads the config file again and swaps it in; why says what
// asked (SIGHUP, admin, watch), for the log. Any failure leaves the
// running config serving; the error is logged in full and returned.
func (s *Server) Reload(ctx context.Context, why string) (*config.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.logWarnings(cfg)
	return cfg, nil
}

// swap does reload's work; call it with s.mu held.
func (s *Server) swap(ctx context.Context) (*config.Config, error) {
	cfg, err := config.Load(s.path)
	if err != nil {
		return nil, err
	}
	next, deps, err := s.build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.gw.Reload(cfg, deps); err != nil {
		s.discard(next) // never served: nothing to wait for
		return nil, err
	}
	s.commit(next)
	return cfg, nil
}

// pluginKey identifies what the host holds for a plugin: the module's
// hash and its limits. Equal keys mean Load would do nothing.
type pluginKey struct {
	sum  [32]byte
	spec config.Plugin
}

// changedPlugins returns the keys of the plugins whose modules, read in
// mods, the host does not hold as they are now.
func (s *Server) changedPlugins(cfg *config.Config, mods map[string][]byte) map[string]pluginKey {
	changed := map[string]pluginKey{}
	for _, p := range cfg.Plugins {
		if k := (pluginKey{sha256.Sum256(mods[p.Name]), p}); s.loaded[p.Name] != k {
			changed[p.Name] = k
		}
	}
	return changed
}

// remember records that the host now holds the plugins in changed as
// they were read and loaded (never read again here: the file may have
// been replaced since, and the next reload must see that as a change).
func (s *Server) remember(changed map[string]pluginKey) {
	if s.loaded == nil {
		s.loaded = map[string]pluginKey{}
	}
	for name, k := range changed {
		s.loaded[name] = k
	}
}

// checkPlugins compiles and starts the modules in mods in a
// throwaway host, so a module that does not load is refused before the
// running host is touched. The compilation cache (transforms.cache_dir)
// makes the real load that follows cheap.
func checkPlugins(ctx context.Context, cfg *config.Config, mods map[string][]byte) error {
	host, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir})
	if err != nil {
		return err
	}
	defer host.Close(context.Background())
	var errs []error
	for _, p := range cfg.Plugins {
		wasm, ok := mods[p.Name]
		if !ok {
			continue
		}
		// One plugin at a time, every failure reported: the person reloading
		// fixes them all in one go.
		if err := loadPlugins(ctx, host, cfg, map[string][]byte{p.Name: wasm}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
