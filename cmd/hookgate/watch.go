package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/transforms"
)

// watchInterval is how often --watch looks at the files; watchSettle is
// how long they must stay unchanged before a reload, so an editor's save
// or a build writing a .wasm in several steps reloads once, complete.
const (
	watchInterval = time.Second
	watchSettle   = 500 * time.Millisecond
)

// fileStamp is what --watch compares: a change of either is a change.
type fileStamp struct {
	mod  time.Time
	size int64
	err  bool // missing or unreadable
}

// watchedFiles are the config file and every plugin's .wasm file of the
// config being served.
func (s *server) watchedFiles() []string {
	files := []string{s.path}
	if s.gw != nil {
		for _, p := range s.gw.Config().Plugins {
			files = append(files, p.Wasm)
		}
	}
	return files
}

func stampAll(files []string) map[string]fileStamp {
	out := make(map[string]fileStamp, len(files))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			out[f] = fileStamp{err: true}
			continue
		}
		out[f] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out
}

func sameStamps(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.mod.Equal(w.mod) || v.size != w.size || v.err != w.err {
			return false
		}
	}
	return true
}

// watch polls the config file and the plugins' .wasm files every interval
// until ctx ends, and reloads once a change has settled. A reload that
// fails is logged (by reload) and not retried until the files change
// again.
func (s *server) watch(ctx context.Context, interval time.Duration) {
	s.log.Info("watching for changes", "files", len(s.watchedFiles()), "every", interval)
	last := stampAll(s.watchedFiles())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := stampAll(s.watchedFiles())
		if sameStamps(now, last) {
			continue
		}
		// Debounce: wait until the files stop changing.
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(watchSettle):
			}
			again := stampAll(s.watchedFiles())
			if sameStamps(again, now) {
				break
			}
			now = again
		}
		s.reload(ctx, "watch")
		// The new config may watch other .wasm files.
		last = stampAll(s.watchedFiles())
	}
}

// pluginKey identifies what the host holds for a plugin: the module's
// hash and its limits. Equal keys mean Load would do nothing.
type pluginKey struct {
	sum  [32]byte
	spec config.Plugin
}

// changedPlugins reads the plugins of cfg and returns the names of those
// the host does not hold as they are now.
func (s *server) changedPlugins(cfg *config.Config) (map[string]bool, error) {
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
func (s *server) remember(cfg *config.Config, changed map[string]bool) {
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
