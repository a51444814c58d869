package server

import (
	"context"
	"os"
	"time"
)

// WatchInterval is how often --watch looks at the files; watchSettle is
// how long they must stay unchanged before a reload, so an editor's save
// or a build writing a .wasm in several steps reloads once, complete.
const (
	WatchInterval = time.Second
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
func (s *Server) watchedFiles() []string {
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

// Watch polls the config file and the plugins' .wasm files every interval
// until ctx ends, and reloads once a change has settled. A reload that
// fails is logged (by Reload) and not retried until the files change
// again.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
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
		s.Reload(ctx, "watch")
		// The new config may watch other .wasm files. The files it read
		// keep the stamps they had before the reload: a change made while
		// it ran (a .wasm rebuilt just after the config was saved) is then
		// seen at the next tick instead of being taken as already loaded.
		last = stampAll(s.watchedFiles())
		for f, st := range now {
			if _, ok := last[f]; ok {
				last[f] = st
			}
		}
	}
}
