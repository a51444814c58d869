package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/transforms"
)

// Chains adapts the transforms host to gateway.ChainBuilder, so the
// gateway never imports wazero. (What a chain decided is recorded by the
// gateway's recorder, record.Route.Chained.)
type Chains struct {
	Host *transforms.Host
}

// Build builds route r's chain.
func (b Chains) Build(r config.Route) (gateway.Chain, error) {
	steps := make([]transforms.Step, len(r.Transforms))
	for i, s := range r.Transforms {
		steps[i] = transforms.Step{Plugin: s.Plugin, Config: s.Config}
	}
	// The route's targets are the ones its plugins may emit to, and where
	// the event goes when nobody emits.
	return b.Host.Chain(r.Name, steps, r.Targets)
}

// readPlugins reads the modules of cfg's plugins: with used set, only
// those some route's chain names (try needs one route's, serve needs all).
// A build reads each module once and checks, loads and remembers those
// very bytes, so a .wasm replaced midway cannot leave the host running one
// module while the server believes it holds another.
func readPlugins(cfg *config.Config, used map[string]bool) (map[string][]byte, error) {
	mods := make(map[string][]byte, len(cfg.Plugins))
	for _, p := range cfg.Plugins {
		if used != nil && !used[p.Name] {
			continue
		}
		wasm, err := os.ReadFile(p.Wasm)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: cannot read %s: %w; build the plugins (make plugins) or fix wasm in the config", p.Name, p.Wasm, err)
		}
		mods[p.Name] = wasm
	}
	return mods, nil
}

// loadPlugins loads the modules in mods, by plugin name, into host, in
// cfg's order.
func loadPlugins(ctx context.Context, host *transforms.Host, cfg *config.Config, mods map[string][]byte) error {
	for _, p := range cfg.Plugins {
		wasm, ok := mods[p.Name]
		if !ok {
			continue
		}
		spec := transforms.PluginSpec{Name: p.Name, Wasm: wasm, Instances: p.Instances, Timeout: p.Timeout, MaxMemory: p.MaxMemory, MaxOutput: p.MaxOutput, StartTimeout: p.StartTimeout}
		if err := host.Load(ctx, spec); err != nil {
			return err
		}
	}
	return nil
}

// newHost starts the transforms host for cfg and loads its plugins.
func newHost(ctx context.Context, cfg *config.Config, logger *slog.Logger, used map[string]bool) (*transforms.Host, error) {
	host, err := transforms.NewHost(ctx, transforms.Options{CacheDir: cfg.Transforms.CacheDir, Logger: logger})
	if err != nil {
		return nil, err
	}
	mods, err := readPlugins(cfg, used)
	if err == nil {
		err = loadPlugins(ctx, host, cfg, mods)
	}
	if err != nil {
		host.Close(ctx)
		return nil, err
	}
	return host, nil
}
